// Modules that register scenario step types (registerStep in registry.ts). One import per module;
// device modules add theirs here (e.g. import "../devices/vmgenid/steps.ts";).
import "./steps.ts";
import "../devices/vmm/steps.ts";
import "../devices/hyperv/steps.ts";
import "../devices/vmgenid/steps.ts";
