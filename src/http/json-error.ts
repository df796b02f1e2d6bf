// json-error.ts: the API's one error body, {"error":{"code","message"}}, as a Response, for the
// gates in front of the app (the app answers through Hono's context). Decides nothing itself.

export function jsonError(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error: { code, message } }), {
    status,
    headers: { ...headers, "content-type": "application/json" },
  });
}
