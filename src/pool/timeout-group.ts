// timeout-group.ts: one timer for the attempts started together with the same time limit, cleared when
// the last of them ends, interrupting whichever still run when it fires. It decides nothing else.
import { AttemptTimeoutError } from "../errors.ts";

/** What the group can interrupt: an attempt that may still be running. */
export interface Interruptible {
  interrupt?: (reason: Error) => void;
}

export class TimeoutGroup {
  private members = new Set<Interruptible>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly ms: number) {}

  join(entry: Interruptible): void {
    this.members.add(entry);
  }

  leave(entry: Interruptible): void {
    this.members.delete(entry);
    if (this.members.size === 0 && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Starts the clock once every member has joined (members that already ended are gone). */
  arm(): void {
    if (this.members.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      for (const entry of [...this.members]) entry.interrupt?.(new AttemptTimeoutError(this.ms));
    }, this.ms);
  }
}
