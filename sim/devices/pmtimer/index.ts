// ACPI PM timer family: the exact tick arithmetic, the stand-alone timer port (bhyve / qemu /
// acpi profiles), QEMU's ICH9 ACPI PM register block and the ICH9 LPC function that maps it.
export * from "./ticks.ts";
export * from "./pmtimer.ts";
export * from "./bhyve-inout.ts";
export * from "./acpi-pm.ts";
export * from "./ich9-lpc.ts";
