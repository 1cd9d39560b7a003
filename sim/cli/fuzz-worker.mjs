// Worker thread entry of `hvsim fuzz` (in-process targets run here, watched by the main thread):
// loads the TypeScript sources through tsx like bin.mjs, then the worker body.
import { register } from "tsx/esm/api";

register();
await import("./commands/fuzz-worker.ts");
