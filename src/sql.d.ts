// sql.d.ts: lets TypeScript import the numbered migration files as text (Bun embeds them).
declare module "*.sql" {
  const text: string;
  export default text;
}
