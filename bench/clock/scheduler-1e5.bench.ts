// The event scheduler with 1e5 events pending: see workload.ts.
import { schedulerSuite } from "./workload.ts";

export const suite = schedulerSuite(100_000, "1e5");
