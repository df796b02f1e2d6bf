// model.fault.ts: the long run of the model-based store test (tests/store.model.test.ts): thousands
// of random sequences per store with a fresh seed each time, printed first so a failure can be
// replayed: JOBQUEUE_MODEL_SEED=<seed> JOBQUEUE_MODEL_RUNS=<runs> bun test --timeout 600000 ./tests/faults/model.fault.ts
// (add JOBQUEUE_MODEL_PATH=<path> from fast-check's report to go straight to the shrunk case).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rulesFor } from "../support/model-known-bugs.ts";
import { checkStoreAgainstModel, describeTally, missingOutcomes, modelRunOptions } from "../support/model-run.ts";
import { postgresTarget, sqliteTarget, type ModelTarget } from "../support/model-targets.ts";

const MAX_STEPS = 60;
const STORES = [
  { name: "sqlite", open: async () => sqliteTarget(), numRuns: 3_000 },
  { name: "postgres", open: postgresTarget, numRuns: 1_200 },
] as const;

for (const { name, open, numRuns } of STORES) {
  describe(`the ${name} store against the model, long run`, () => {
    let target: ModelTarget;
    beforeAll(async () => {
      target = await open();
    });
    afterAll(async () => target?.dispose());

    test("every step of thousands of random sequences leaves each job, the counts and the stats where the model says", async () => {
      const opts = modelRunOptions({ seed: Math.floor(Math.random() * 2 ** 31), numRuns, maxSteps: MAX_STEPS, ...rulesFor(name) });
      console.log(`model ${name} long run: seed ${opts.seed}, ${opts.numRuns} sequences of up to ${MAX_STEPS} steps (replay: JOBQUEUE_MODEL_SEED=${opts.seed} JOBQUEUE_MODEL_RUNS=${opts.numRuns} bun test --timeout 600000 -t ${name} ./tests/faults/model.fault.ts)`);
      const t0 = performance.now();
      const tally = await checkStoreAgainstModel(target, opts);
      console.log(`model ${name} long run: ${tally.get("steps")} steps in ${Math.round(performance.now() - t0)} ms; ${describeTally(tally)}`);
      expect(missingOutcomes(tally)).toEqual([]);
    });
  });
}
