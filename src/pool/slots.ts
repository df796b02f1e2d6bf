// slots.ts: what the pool's slots hold: attempts running a handler, jobs being claimed or reserved for
// a leased insert, and how many of each type against its concurrency limit. It only counts: it never
// claims, starts or settles a job, and never decides when to.
import { claimsAhead, isLimited, isRated } from "../config/flow-policy.ts";
import type { HandlerRegistry } from "../handlers/handler.ts";
import type { Scheduler, SharedRoom } from "../queue/scheduler.ts";
import type { TypeCap } from "../store/rows.ts";
import type { Gate } from "./gate.ts";
import type { Pushback } from "./pushback.ts";

export interface SlotsDeps {
  /** Slots in the pool. */
  concurrency: number;
  registry: Pick<HandlerRegistry, "get" | "types" | "version">;
  scheduler: Pick<Scheduler, "typeCount" | "typeName" | "readyCount" | "readyOf">;
  /** A type with a concurrency limit gave back a slot after watchRoom() asked to hear of it (once per ask). */
  onRoom: () => void;
  /** Flow control: a type it shuts has no room at all. */
  gate: Pick<Gate, "shut">;
  /** Flow control: what the type's target allows now (adaptive concurrency, a half-open breaker's one probe). */
  pushback: Pick<Pushback, "roomFor" | "limited">;
  /**
   * Pull types (remote workers run their jobs): room only for jobs the waiting polls asked for
   * (undefined for other types). Their jobs hold none of the pool's slots once handed out.
   */
  remote?: { room(type: string, occupied: number): number | undefined };
}

/**
 * Which jobs a claim is for: "local" ones run a handler here and need a free slot; "remote" ones
 * (pull types) go to remote workers and need only a waiting poll's room.
 */
export type ClaimPart = "local" | "remote";

export function createSlots(deps: SlotsDeps) {
  const { registry, scheduler } = deps;
  /** Attempts running a handler. */
  let active = 0;
  /** Attempts of pull types handed to remote workers (they hold no slot). */
  let remoteActive = 0;
  /** Whether any registered type is a pull type (otherwise every claim is "local" and nothing here looks further), as of the registry's version. */
  let remoteAsOf = -1;
  let anyRemote = false;
  const hasRemote = (): boolean => {
    if (remoteAsOf !== registry.version) {
      remoteAsOf = registry.version;
      anyRemote = deps.remote !== undefined && registry.types().some((t) => registry.get(t)?.pull === true);
    }
    return anyRemote;
  };
  const isRemote = (type: string) => hasRemote() && registry.get(type)?.pull === true;
  /** Types met in the store with no handler here (another node's, or dropped by a reload): never claimed here. */
  const unknown = new Set<string>();
  /** Slots held for jobs whose claim, pull or leased insert is out. */
  let claiming = 0;
  /** Jobs claimed ahead (beyond the free slots) that wait here for a slot, in order (attempt.ts). */
  let queued = 0;
  /** How many jobs claims may take beyond the free slots now (claim ahead; 0: none). */
  let ahead = 0;
  /** Jobs of each type being claimed or running a handler here (for per-type concurrency). */
  const occupied = new Map<string, number>();
  /** Slots that can start a job at once: neither running a handler, held for a claim, nor promised to a waiting job. */
  const startNow = () => deps.concurrency - active - claiming - queued;
  /** Jobs a claim (or a leased insert) may take now: startNow() plus the claim-ahead room. */
  const free = () => startNow() + ahead;
  /** The rate-limited types' scheduler codes, as of the registry's version and the scheduler's type count. */
  let ratedAsOf = -1;
  let ratedTypes = 0;
  let ratedCodes: boolean[] | undefined;
  let roomWatched = false;

  function occupy(type: string, delta: number): void {
    const n = (occupied.get(type) ?? 0) + delta;
    if (n === 0) occupied.delete(type);
    else occupied.set(type, n);
    if (delta < 0 && roomWatched && (registry.get(type)?.concurrency !== undefined || deps.pushback.limited(type))) {
      roomWatched = false;
      deps.onRoom();
    }
  }

  /** How many more jobs of `type` may start here, or undefined when nothing limits it but the pool. */
  function roomFor(type: string): number | undefined {
    if (deps.gate.shut(type)) return 0;
    // A type with no handler here (dropped by a reload of the types file) waits until it returns.
    const registered = registry.get(type);
    if (registered === undefined) return 0;
    const limit = registered.concurrency;
    const busy = occupied.get(type) ?? 0;
    const own = limit === undefined ? undefined : limit - busy;
    const target = deps.pushback.roomFor(type, busy);
    const limited = target === undefined ? own : own === undefined ? target : Math.min(own, target);
    const asked = deps.remote?.room(type, busy);
    return asked === undefined ? limited : limited === undefined ? asked : Math.min(limited, asked);
  }

  /** Every type the heaps know (a paused type may have jobs but no handler here). */
  function scheduledTypes(): string[] {
    const out: string[] = [];
    for (let code = 0; code < scheduler.typeCount; code++) out.push(scheduler.typeName(code));
    return out;
  }

  return {
    /** Whether `type` is at its concurrency limit here, its own or the lower one its target's pushback allows now (not counting flow control's holds). */
    typeFull(type: string): boolean {
      const limit = registry.get(type)?.concurrency;
      const busy = occupied.get(type) ?? 0;
      const own = limit === undefined ? undefined : limit - busy;
      const target = deps.pushback.roomFor(type, busy);
      return (own !== undefined && own <= 0) || (target !== undefined && target <= 0);
    },
    /**
     * Jobs a claim may take now: slots neither running a handler nor held for a claim, plus the
     * claim-ahead room (jobs that will wait here for a slot), less those already waiting.
     */
    get free(): number {
      return free();
    },
    /** Slots not running a handler (held ones included): how many claimed jobs may start at once. */
    get idle(): number {
      return deps.concurrency - active;
    },
    /** Whether a claimed job may start its handler now (a slot is free), or must wait for one. */
    get startable(): boolean {
      return active < deps.concurrency;
    },
    /** Jobs claimed ahead that wait here for a slot. */
    get queued(): number {
      return queued;
    },
    /** `delta` more (or fewer) jobs wait here for a slot. */
    queue(delta: number): void {
      queued += delta;
    },
    /** Set how many jobs claims may take beyond the free slots. */
    setAhead(n: number): void {
      ahead = n;
    },
    /**
     * Whether a claim from the heap is worth sending now: always while no claimed job waits here;
     * while some do, only once the jobs waiting and being claimed fill no more than half the
     * claim-ahead room. A line that still holds most of its work has time for a claim's round
     * trip, and a claim sent at every freed slot carried a few jobs each, its commit costing as
     * much as a big one's.
     */
    get worthClaiming(): boolean {
      return queued === 0 || (queued + claiming) * 2 <= ahead;
    },
    get active(): number {
      return active;
    },
    get claiming(): number {
      return claiming;
    },
    /** Hold `n` slots for a claim or pull going out (their types are occupied by the caller). */
    hold(n: number): void {
      claiming += n;
    },
    /** Give back `n` held slots: their claim landed (its jobs now run, or hold nothing) or failed. */
    unhold(n: number): void {
      claiming -= n;
    },
    /** An attempt started running its handler (its type was occupied when it was claimed); a pull type's takes no slot. */
    begin(type: string): void {
      if (isRemote(type)) remoteActive++;
      else active++;
    },
    /** An attempt's handler ended: its slot and its type's slot are free. */
    end(type: string): void {
      if (isRemote(type)) remoteActive--;
      else active--;
      occupy(type, -1);
    },
    /** Attempts of pull types out to remote workers. */
    get remoteActive(): number {
      return remoteActive;
    },
    /** Count `delta` more (or fewer) jobs of `type` as claimed or running. */
    occupy,
    /**
     * Hold a slot for a job of `type` to be inserted already leased to this node: false when no slot
     * is free or the type is at its limit. The slot is given back by unreserve() or by the job's start.
     */
    reserve(type: string): boolean {
      // A free slot, or room to claim ahead: a job born leased while every slot is busy waits here
      // for one behind those already waiting (they were claimed first), as a claim's would.
      if (free() <= 0 && !isRemote(type)) return false;
      // A rate or per-key limit is weighed by a claim in the store: such jobs never start born leased.
      if (isLimited(registry.get(type)?.flow)) return false;
      const room = roomFor(type);
      if (room !== undefined && room <= 0) return false;
      claiming++;
      occupy(type, 1);
      return true;
    },
    /** Give back a reserved slot whose job was not inserted. */
    unreserve(type: string): void {
      claiming--;
      occupy(type, -1);
    },
    /** Call onRoom the next time a type with a limit gives back a slot. */
    watchRoom(): void {
      roomWatched = true;
    },
    /** Whether any registered type is a pull type (claims then have a "remote" part). */
    get hasRemote(): boolean {
      return hasRemote();
    },
    /** A claim from the store brought a job of a type with no handler here: leave that type's rows there from now on. */
    unknownType(type: string): void {
      unknown.add(type);
    },
    /** Jobs the waiting polls still want, over all pull types (a poll for several types counts for each). */
    remoteWant(): number {
      if (!hasRemote()) return 0;
      let n = 0;
      for (const type of registry.types()) if (isRemote(type)) n += Math.max(0, roomFor(type) ?? 0);
      return n;
    },
    /** Room per scheduler type code for popReady's `part` of a claim (undefined when no type has a limit). */
    roomByCode(part: ClaimPart = "local"): number[] | undefined {
      let room: number[] | undefined;
      for (let code = 0; code < scheduler.typeCount; code++) {
        const type = scheduler.typeName(code);
        const r = hasRemote() && isRemote(type) !== (part === "remote") ? 0 : roomFor(type);
        if (r !== undefined) (room ??= [])[code] = r;
      }
      return room;
    },
    /**
     * While claims take jobs ahead of free slots: rate-limited types draw on the slots that can start
     * a job at once (undefined when nothing is claimed ahead or no such type is known). A rate is
     * weighed when the claim is made, so a job that then waited here for a slot could start in a
     * later window than the one its start was counted in, and several such could start together.
     * Types that claim ahead (flow-policy.ts claimsAhead) are the exception: their claims count each
     * start later than it happens, and their jobs start within that much of the claim or go back.
     */
    startNowRoom(): SharedRoom | undefined {
      if (ahead === 0) return undefined;
      if (ratedAsOf !== registry.version || ratedTypes !== scheduler.typeCount) {
        ratedAsOf = registry.version;
        ratedTypes = scheduler.typeCount;
        ratedCodes = undefined;
        for (let code = 0; code < scheduler.typeCount; code++) {
          const flow = registry.get(scheduler.typeName(code))?.flow;
          if (isRated(flow) && !claimsAhead(flow)) (ratedCodes ??= [])[code] = true;
        }
      }
      return ratedCodes && { members: ratedCodes, left: startNow() };
    },
    /** Whether the heap holds a ready job for `part` of a claim of a type that is not at its concurrency limit. */
    claimableReady(part: ClaimPart = "local"): boolean {
      const ready = scheduler.readyCount;
      if (ready === 0) return false;
      let blocked = 0;
      for (let code = 0; code < scheduler.typeCount; code++) {
        const type = scheduler.typeName(code);
        if (hasRemote() && isRemote(type) !== (part === "remote")) {
          blocked += scheduler.readyOf(type);
          continue;
        }
        const r = roomFor(type);
        if (r !== undefined && r <= 0) blocked += scheduler.readyOf(type);
      }
      return ready > blocked;
    },
    /** Caps for claimNext: every limited or shut type this process knows, with its room left (for "remote", every other type has none). */
    caps(part: ClaimPart = "local"): TypeCap[] {
      const caps: TypeCap[] = [];
      for (const type of new Set([...registry.types(), ...scheduledTypes(), ...unknown])) {
        // Rate- and key-limited types are claimed by id only (from the heap), where the store weighs them.
        const room = isLimited(registry.get(type)?.flow) || (part === "remote" && !isRemote(type)) ? 0 : roomFor(type);
        if (room !== undefined) caps.push({ type, room: Math.max(0, room) });
      }
      return caps;
    },
  };
}

export type Slots = ReturnType<typeof createSlots>;
