// clock.ts: the one Clock type. Time is an argument: components take a Clock (epoch ms), tests hand
// them a fake one, and a queue on PostgreSQL uses the store's clock (the database server's time).
export type Clock = () => number;
