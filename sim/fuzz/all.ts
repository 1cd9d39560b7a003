// Every in-process fuzz target: the wire structs (targets.ts) plus the formats that register
// themselves (formats.ts). Import this, not targets.ts, to see them all.
import "./formats.ts";

export { findInProcessTarget, inProcessTargets } from "./targets.ts";
