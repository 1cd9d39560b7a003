// Worker entry of bench/hyperv/daemon-fuzz.bench.ts: loads the TypeScript worker through tsx
// (hooks registered on the main thread do not reach worker threads in Node 20).
import { register } from "tsx/esm/api";

register();
await import("./daemon-fuzz-worker.ts");
