// dashboard.ts: the page GET /ui serves: dashboard.html (markup, CSS and script in one file, no CDN,
// no build step), embedded in the binary as text. The page polls the gated JSON endpoints with the
// token kept in sessionStorage and holds no data itself: it is served without the token, so it must
// never embed counts, jobs or secrets.
import page from "./dashboard.html" with { type: "text" };

// Bun's types call an .html import an HTMLBundle (its dev server's); with type "text" it is the file's text.
const PAGE = page as unknown as string;

/** The dashboard page; constant text, so the route can serve it before any token is checked. */
export function dashboardPage(): string {
  return PAGE;
}
