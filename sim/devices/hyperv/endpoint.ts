// The daemon endpoint interface: how user space talks to the kernel's character devices
// (/dev/vmbus/hv_kvp, /dev/vmbus/hv_vss; drivers/hv/hv_utils_transport.c). Everything crosses as
// clock events carrying plain data, so a daemon model, a scripted test endpoint or the bridge to
// the real Debian daemons (sim/targets/hvdaemon) are interchangeable:
//
//   endpoint -> kernel: event (target = kernel device id, kind HVT_CALL, payload HvtCall)
//   kernel -> endpoint: event (target = call.from,        kind HVT_RESULT, payload HvtResult)
//
// open/read/write/poll/close behave as the upstream file operations: one opener (a second open is
// -EBUSY), read returns the one queued message whole (-EINVAL for a short buffer, the message
// stays) and blocks while none is queued, one write is one message (the result is the driver's
// error or the byte count), poll completes when a message is queued (POLLIN|POLLRDNORM) or the
// device is being destroyed (POLLERR|POLLHUP), close drops the queued message and resets the
// service. An endpoint has at most one call in flight; `tag` is echoed back so an endpoint that
// restarted can ignore results meant for its previous life.
import type { Plain } from "../../clock/canonical.ts";

export type Service = "kvp" | "vss";
export const SERVICES: readonly Service[] = ["kvp", "vss"];

export const HVT_CALL = "hvt.call";
export const HVT_RESULT = "hvt.result";

export type HvtCallName = "open" | "read" | "write" | "poll" | "close";

export interface HvtCall {
  [k: string]: Plain | undefined;
  readonly service: Service;
  /** The endpoint's device id (where results go). */
  readonly from: string;
  readonly call: HvtCallName;
  /** read: the caller's buffer size. */
  readonly len?: number;
  /** write: the bytes written. */
  readonly bytes?: Uint8Array;
  readonly tag?: number;
}

export interface HvtResult {
  [k: string]: Plain | undefined;
  readonly service: Service;
  readonly call: HvtCallName;
  /** >= 0: success (bytes read/written, 0 for open/close/poll); < 0: -errno. */
  readonly ret: number;
  /** read: the message. */
  readonly bytes?: Uint8Array;
  /** poll: the returned event mask. */
  readonly revents?: number;
  readonly tag?: number;
}

// errno values (include/uapi/asm-generic/errno-base.h)
export const EBADF = 9;
export const EAGAIN = 11;
export const EFAULT = 14;
export const EBUSY = 16;
export const EINVAL = 22;

// poll bits (include/uapi/asm-generic/poll.h)
export const POLLIN = 0x1;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLRDNORM = 0x40;
