// The event scheduler with 10 events pending: see workload.ts.
import { schedulerSuite } from "./workload.ts";

export const suite = schedulerSuite(10, "10");
