// The event scheduler with 1e3 events pending: see workload.ts.
import { schedulerSuite } from "./workload.ts";

export const suite = schedulerSuite(1_000, "1e3");
