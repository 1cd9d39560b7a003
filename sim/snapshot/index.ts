export * from "./container.ts";
export * from "./snapshot.ts";
