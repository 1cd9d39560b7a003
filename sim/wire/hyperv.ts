// Wire structs of the Hyper-V KVP, VSS and fcopy integration services, declared from the facts of
// Linux's include/uapi/linux/hyperv.h (guest kernel <-> daemon messages, also the host's payloads),
// plus the host-side IC framing of the kernel-internal include/linux/hyperv.h. Packed exactly where
// the headers say `__attribute__((packed))` / `__packed`; the gcc layout spec checks every offset.
import { anon, array, field, flex, i32, struct, u8, u16, u32, u64, union } from "./types.ts";
import {
  DATA_FRAGMENT,
  HV_KVP_EXCHANGE_MAX_KEY_SIZE,
  HV_KVP_EXCHANGE_MAX_VALUE_SIZE,
  IC_VERSION_NEGOTIATION_MAX_VER_COUNT,
  KVP_OP_DELETE,
  KVP_OP_ENUMERATE,
  KVP_OP_GET,
  KVP_OP_GET_IP_INFO,
  KVP_OP_REGISTER1,
  KVP_OP_SET,
  KVP_OP_SET_IP_INFO,
  MAX_ADAPTER_ID_SIZE,
  MAX_GATEWAY_SIZE,
  MAX_IP_ADDR_SIZE,
  REG_U32,
  REG_U64,
  VSS_OP_GET_DM_INFO,
  W_MAX_PATH,
} from "./hyperv-constants.ts";

const packed = { packed: true } as const;

/** Reads `parent[a][b]` of a partly decoded struct; undefined when absent. */
function member(parent: Record<string, unknown>, a: string, b: string): unknown {
  const x = parent[a];
  return x !== null && typeof x === "object" ? (x as Record<string, unknown>)[b] : undefined;
}

// ======================= VSS =======================

export const hv_vss_hdr = struct("hv_vss_hdr", [field("operation", u8), field("reserved", array(u8, 7))], packed);

export const hv_vss_check_feature = struct("hv_vss_check_feature", [field("flags", u32)], packed);

export const hv_vss_check_dm_info = struct("hv_vss_check_dm_info", [field("flags", u32)], packed);

/**
 * Which member of hv_vss_msg's second union a message carries, by vss_hdr.operation: the kernel
 * fills dm_info for GET_DM_INFO and vss_cf (the HOT_BACKUP feature flags) otherwise; both are one
 * __u32 at offset 8, so nothing is lost either way.
 */
export function vssPayloadMember(operation: unknown): "vss_cf" | "dm_info" {
  return operation === VSS_OP_GET_DM_INFO ? "dm_info" : "vss_cf";
}

/**
 * struct hv_vss_msg. The first anonymous union (header or `int error`, which overlays it when the
 * daemon answers) always decodes as vss_hdr, so the operation is available; encode either.
 */
export const hv_vss_msg = struct(
  "hv_vss_msg",
  [
    anon(union("<anonymous union in hv_vss_msg at 0>", [field("vss_hdr", hv_vss_hdr), field("error", i32)])),
    anon(
      union("<anonymous union in hv_vss_msg at 8>", [field("vss_cf", hv_vss_check_feature), field("dm_info", hv_vss_check_dm_info)], {
        select: (parent) => vssPayloadMember(member(parent, "vss_hdr", "operation")),
      }),
    ),
  ],
  packed,
);

// ======================= fcopy =======================

export const hv_fcopy_hdr = struct(
  "hv_fcopy_hdr",
  [field("operation", u32), field("service_id0", array(u8, 16)), field("service_id1", array(u8, 16))],
  packed,
);

export const hv_start_fcopy = struct(
  "hv_start_fcopy",
  [
    field("hdr", hv_fcopy_hdr),
    field("file_name", array(u16, W_MAX_PATH)),
    field("path_name", array(u16, W_MAX_PATH)),
    field("copy_flags", u32),
    field("file_size", u64),
  ],
  packed,
);

export const hv_do_fcopy = struct(
  "hv_do_fcopy",
  [field("hdr", hv_fcopy_hdr), field("pad", u32), field("offset", u64), field("size", u32), field("data", array(u8, DATA_FRAGMENT))],
  packed,
);

// ======================= KVP =======================

export const hv_kvp_ipaddr_value = struct(
  "hv_kvp_ipaddr_value",
  [
    field("adapter_id", array(u16, MAX_ADAPTER_ID_SIZE)),
    field("addr_family", u8),
    field("dhcp_enabled", u8),
    field("ip_addr", array(u16, MAX_IP_ADDR_SIZE)),
    field("sub_net", array(u16, MAX_IP_ADDR_SIZE)),
    field("gate_way", array(u16, MAX_GATEWAY_SIZE)),
    field("dns_addr", array(u16, MAX_IP_ADDR_SIZE)),
  ],
  packed,
);

export const hv_kvp_hdr = struct("hv_kvp_hdr", [field("operation", u8), field("pool", u8), field("pad", u16)], packed);

/**
 * Which member of hv_kvp_exchg_msg_value's value union a message carries, by value_type, the way
 * drivers/hv/hv_kvp.c reads it: value_u32 for REG_U32, value_u64 for REG_U64, the bytes otherwise
 * (REG_SZ, and the daemon's answers, which leave value_type 0).
 */
export function kvpValueMember(valueType: unknown): "value" | "value_u32" | "value_u64" {
  return valueType === REG_U32 ? "value_u32" : valueType === REG_U64 ? "value_u64" : "value";
}

export const hv_kvp_exchg_msg_value = struct(
  "hv_kvp_exchg_msg_value",
  [
    field("value_type", u32),
    field("key_size", u32),
    field("value_size", u32),
    field("key", array(u8, HV_KVP_EXCHANGE_MAX_KEY_SIZE)),
    anon(
      union(
        "<anonymous union in hv_kvp_exchg_msg_value>",
        [field("value", array(u8, HV_KVP_EXCHANGE_MAX_VALUE_SIZE)), field("value_u32", u32), field("value_u64", u64)],
        { packed: true, select: (parent) => kvpValueMember(parent.value_type) },
      ),
    ),
  ],
  packed,
);

export const hv_kvp_msg_enumerate = struct("hv_kvp_msg_enumerate", [field("index", u32), field("data", hv_kvp_exchg_msg_value)], packed);

// The next four have natural alignment upstream (no packed attribute).
export const hv_kvp_msg_get = struct("hv_kvp_msg_get", [field("data", hv_kvp_exchg_msg_value)]);

export const hv_kvp_msg_set = struct("hv_kvp_msg_set", [field("data", hv_kvp_exchg_msg_value)]);

export const hv_kvp_msg_delete = struct("hv_kvp_msg_delete", [field("key_size", u32), field("key", array(u8, HV_KVP_EXCHANGE_MAX_KEY_SIZE))]);

export const hv_kvp_register = struct("hv_kvp_register", [field("version", array(u8, HV_KVP_EXCHANGE_MAX_KEY_SIZE))]);

export type KvpBodyMember = "kvp_get" | "kvp_set" | "kvp_delete" | "kvp_enum_data" | "kvp_ip_val" | "kvp_register";

/**
 * Operation -> member of hv_kvp_msg.body. Operation 4 is both KVP_OP_GET_IP_INFO (host and kernel
 * requests) and the legacy daemon's KVP_OP_REGISTER; it decodes as kvp_ip_val, the meaning on every
 * live path (current daemons register with REGISTER1 = 100, which decodes as kvp_register). A
 * legacy registration therefore shows its version string inside kvp_ip_val.adapter_id; decode the
 * body as hv_kvp_register to read it.
 */
export const KVP_BODY_MEMBER_BY_OP: ReadonlyMap<number, KvpBodyMember> = new Map<number, KvpBodyMember>([
  [KVP_OP_GET, "kvp_get"],
  [KVP_OP_SET, "kvp_set"],
  [KVP_OP_DELETE, "kvp_delete"],
  [KVP_OP_ENUMERATE, "kvp_enum_data"],
  [KVP_OP_GET_IP_INFO, "kvp_ip_val"], // = KVP_OP_REGISTER
  [KVP_OP_SET_IP_INFO, "kvp_ip_val"],
  [KVP_OP_REGISTER1, "kvp_register"],
]);

/**
 * The member of hv_kvp_msg.body for an operation. Unknown operations decode as kvp_ip_val: it is
 * the largest member (7426 of the body's 7428 bytes), so no payload byte is hidden. Note that a
 * daemon's answer overwrites the header with `int error` (e.g. HV_S_CONT puts 0x03 in the
 * operation byte), so answers can only be read by the operation of the request they answer.
 */
export function kvpBodyMember(operation: unknown): KvpBodyMember {
  return (typeof operation === "number" ? KVP_BODY_MEMBER_BY_OP.get(operation) : undefined) ?? "kvp_ip_val";
}

/**
 * struct hv_kvp_msg (7432 bytes). The first anonymous union decodes as kvp_hdr (its `int error`
 * overlays the header in the daemon's answers); the body by kvp_hdr.operation (kvpBodyMember).
 */
export const hv_kvp_msg = struct(
  "hv_kvp_msg",
  [
    anon(union("<anonymous union in hv_kvp_msg>", [field("kvp_hdr", hv_kvp_hdr), field("error", i32)])),
    field(
      "body",
      union(
        "<anonymous union hv_kvp_msg.body>",
        [
          field("kvp_get", hv_kvp_msg_get),
          field("kvp_set", hv_kvp_msg_set),
          field("kvp_delete", hv_kvp_msg_delete),
          field("kvp_enum_data", hv_kvp_msg_enumerate),
          field("kvp_ip_val", hv_kvp_ipaddr_value),
          field("kvp_register", hv_kvp_register),
        ],
        { select: (parent) => kvpBodyMember(member(parent, "kvp_hdr", "operation")) },
      ),
    ),
  ],
  packed,
);

export const hv_kvp_ip_msg = struct("hv_kvp_ip_msg", [field("operation", u8), field("pool", u8), field("kvp_ip_val", hv_kvp_ipaddr_value)], packed);

// ============ host-side IC framing (kernel-internal include/linux/hyperv.h) ============

export const vmbuspipe_hdr = struct("vmbuspipe_hdr", [field("flags", u32), field("msgsize", u32)], packed);

export const ic_version = struct("ic_version", [field("major", u16), field("minor", u16)], packed);

export const icmsg_hdr = struct(
  "icmsg_hdr",
  [
    field("icverframe", ic_version),
    field("icmsgtype", u16),
    field("icvermsg", ic_version),
    field("icmsgsize", u16),
    field("status", u32),
    field("ictransaction_id", u8),
    field("icflags", u8),
    field("reserved", array(u8, 2)),
  ],
  packed,
);

const verCount = (v: number) =>
  v > IC_VERSION_NEGOTIATION_MAX_VER_COUNT ? `${v} versions exceed IC_VERSION_NEGOTIATION_MAX_VER_COUNT (${IC_VERSION_NEGOTIATION_MAX_VER_COUNT})` : undefined;

/**
 * struct icmsg_negotiate: the framework versions, then the service versions, in icversion_data.
 * Each count is bounded by IC_VERSION_NEGOTIATION_MAX_VER_COUNT, as vmbus_prep_negotiate_resp
 * checks before reading the array.
 */
export const icmsg_negotiate = struct(
  "icmsg_negotiate",
  [
    field("icframe_vercnt", u16, verCount),
    field("icmsg_vercnt", u16, verCount),
    field("reserved", u32),
    field(
      "icversion_data",
      flex(ic_version, (p) => (p.icframe_vercnt as number) + (p.icmsg_vercnt as number), {
        max: 2 * IC_VERSION_NEGOTIATION_MAX_VER_COUNT,
        countText: "icframe_vercnt + icmsg_vercnt",
      }),
    ),
  ],
  packed,
);

/** Every struct declared here, in header order: [declaration, upstream header]. */
export const HYPERV_UAPI_HEADER = "include/uapi/linux/hyperv.h";
export const HYPERV_KERNEL_HEADER = "include/linux/hyperv.h";

export const HYPERV_UAPI_STRUCTS = [
  hv_vss_hdr,
  hv_vss_check_feature,
  hv_vss_check_dm_info,
  hv_vss_msg,
  hv_fcopy_hdr,
  hv_start_fcopy,
  hv_do_fcopy,
  hv_kvp_ipaddr_value,
  hv_kvp_hdr,
  hv_kvp_exchg_msg_value,
  hv_kvp_msg_enumerate,
  hv_kvp_msg_get,
  hv_kvp_msg_set,
  hv_kvp_msg_delete,
  hv_kvp_register,
  hv_kvp_msg,
  hv_kvp_ip_msg,
] as const;

export const HYPERV_KERNEL_STRUCTS = [vmbuspipe_hdr, ic_version, icmsg_hdr, icmsg_negotiate] as const;
