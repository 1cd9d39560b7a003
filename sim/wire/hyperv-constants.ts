// Constants of the Hyper-V integration services (KVP, VSS, fcopy) and of the host's IC message
// framing. Names follow the upstream macros and enumerators. Sources (Linux 6.1):
// include/uapi/linux/hyperv.h (ops, pools, statuses, limits), include/linux/hyperv.h (IC message
// types, flags, negotiation limits), drivers/hv/hv_kvp.c, drivers/hv/hv_snapshot.c,
// drivers/hv/hv_util.c (offered versions, timeouts, buffer sizes), include/uapi/linux/fs.h
// (FIFREEZE/FITHAW).

// ---- framework versions (major << 16 | minor) ----
export const UTIL_FW_MINOR = 0;
export const UTIL_WS2K8_FW_MAJOR = 1;
export const UTIL_WS2K8_FW_VERSION = (UTIL_WS2K8_FW_MAJOR << 16) | UTIL_FW_MINOR; // 0x10000
export const UTIL_FW_MAJOR = 3;
export const UTIL_FW_VERSION = (UTIL_FW_MAJOR << 16) | UTIL_FW_MINOR; // 0x30000

// ---- VSS ----
export const VSS_OP_REGISTER = 128;
export const VSS_OP_REGISTER1 = 129;
/** enum hv_vss_op */
export const VSS_OP_CREATE = 0;
export const VSS_OP_DELETE = 1;
export const VSS_OP_HOT_BACKUP = 2;
export const VSS_OP_GET_DM_INFO = 3;
export const VSS_OP_BU_COMPLETE = 4;
export const VSS_OP_FREEZE = 5;
export const VSS_OP_THAW = 6;
export const VSS_OP_AUTO_RECOVER = 7;
export const VSS_OP_COUNT = 8;
export const VSS_HBU_NO_AUTO_RECOVERY = 0x00000005;

// ---- fcopy ----
export const FCOPY_VERSION_0 = 0;
export const FCOPY_VERSION_1 = 1;
export const FCOPY_CURRENT_VERSION = FCOPY_VERSION_1;
/** Windows MAX_PATH, in UTF-16 code units. */
export const W_MAX_PATH = 260;
/** enum hv_fcopy_op */
export const START_FILE_COPY = 0;
export const WRITE_TO_FILE = 1;
export const COMPLETE_FCOPY = 2;
export const CANCEL_FCOPY = 3;
export const OVER_WRITE = 0x1;
export const CREATE_PATH = 0x2;
export const DATA_FRAGMENT = 6 * 1024;

// ---- KVP ----
/** Bytes, NUL terminators included. */
export const HV_KVP_EXCHANGE_MAX_VALUE_SIZE = 2048;
export const HV_KVP_EXCHANGE_MAX_KEY_SIZE = 512;
/** Registry value types. */
export const REG_SZ = 1;
export const REG_U32 = 4;
export const REG_U64 = 8;
/** Legacy daemon registration (no IP injection). Same number as KVP_OP_GET_IP_INFO. */
export const KVP_OP_REGISTER = 4;
/** Daemon registration with IP injection, outside the host's opcode space. */
export const KVP_OP_REGISTER1 = 100;
/** enum hv_kvp_exchg_op */
export const KVP_OP_GET = 0;
export const KVP_OP_SET = 1;
export const KVP_OP_DELETE = 2;
export const KVP_OP_ENUMERATE = 3;
export const KVP_OP_GET_IP_INFO = 4;
export const KVP_OP_SET_IP_INFO = 5;
export const KVP_OP_COUNT = 6;
/** enum hv_kvp_exchg_pool */
export const KVP_POOL_EXTERNAL = 0;
export const KVP_POOL_GUEST = 1;
export const KVP_POOL_AUTO = 2;
export const KVP_POOL_AUTO_EXTERNAL = 3;
export const KVP_POOL_AUTO_INTERNAL = 4;
export const KVP_POOL_COUNT = 5;
export const ADDR_FAMILY_NONE = 0x00;
export const ADDR_FAMILY_IPV4 = 0x01;
export const ADDR_FAMILY_IPV6 = 0x02;
/** Sizes in UTF-16 code units (__u16 elements). */
export const MAX_ADAPTER_ID_SIZE = 128;
export const MAX_IP_ADDR_SIZE = 1024;
export const MAX_GATEWAY_SIZE = 512;
/** The version string the kernel answers a daemon's registration with (HV_DRV_VERSION). */
export const HV_DRV_VERSION = "3.1";

// ---- status codes (u32) ----
export const HV_S_OK = 0x00000000;
export const HV_E_FAIL = 0x80004005;
export const HV_S_CONT = 0x80070103;
export const HV_ERROR_NOT_SUPPORTED = 0x80070032;
export const HV_ERROR_MACHINE_LOCKED = 0x800704f7;
export const HV_ERROR_DEVICE_NOT_CONNECTED = 0x8007048f;
export const HV_INVALIDARG = 0x80070057;
export const HV_GUID_NOTFOUND = 0x80041002;
export const HV_ERROR_ALREADY_EXISTS = 0x80070050;
export const HV_ERROR_DISK_FULL = 0x80070070;

// ---- IC message framing (kernel-internal include/linux/hyperv.h) ----
export const ICMSGTYPE_NEGOTIATE = 0;
export const ICMSGTYPE_HEARTBEAT = 1;
export const ICMSGTYPE_KVPEXCHANGE = 2;
export const ICMSGTYPE_SHUTDOWN = 3;
export const ICMSGTYPE_TIMESYNC = 4;
export const ICMSGTYPE_VSS = 5;
export const ICMSGTYPE_FCOPY = 7;
export const ICMSGHDRFLAG_TRANSACTION = 1;
export const ICMSGHDRFLAG_REQUEST = 2;
export const ICMSGHDRFLAG_RESPONSE = 4;
/** Upper bound of each version count in an icmsg_negotiate. */
export const IC_VERSION_NEGOTIATION_MAX_VER_COUNT = 100;
/** sizeof(struct vmbuspipe_hdr) + sizeof(struct icmsg_hdr). */
export const ICMSG_HDR = 28;
/** icmsgsize of a negotiation reply (vmbus_prep_negotiate_resp). */
export const ICMSG_NEGOTIATE_RESP_SIZE = 0x10;

// ---- versions the guest drivers offer (major << 16 | minor) ----
/** drivers/hv/hv_kvp.c: framework versions, preferred first. */
export const KVP_FW_VERSIONS: readonly number[] = Object.freeze([UTIL_FW_VERSION, UTIL_WS2K8_FW_VERSION]);
export const WS2008_SRV_VERSION = 1 << 16;
export const WIN7_SRV_VERSION = 3 << 16;
export const WIN8_SRV_VERSION = 4 << 16;
/** drivers/hv/hv_kvp.c: service versions, preferred first. */
export const KVP_SRV_VERSIONS: readonly number[] = Object.freeze([WIN8_SRV_VERSION, WIN7_SRV_VERSION, WS2008_SRV_VERSION]);
/** drivers/hv/hv_snapshot.c */
export const VSS_FW_VERSIONS: readonly number[] = Object.freeze([UTIL_FW_VERSION]);
export const VSS_VERSION = 5 << 16;
export const VSS_SRV_VERSIONS: readonly number[] = Object.freeze([VSS_VERSION]);

// ---- buffers and timeouts ----
/** KVP channel receive buffer (bytes). */
export const KVP_RECV_BUFFER_SIZE = 16384;
/** VSS maximum packet (bytes). */
export const VSS_MAX_PKT_SIZE = 8192;
/** Per-request timeout of the util drivers (seconds). */
export const HV_UTIL_TIMEOUT = 30;
/** Timeout of the daemon handshake (seconds). */
export const HV_UTIL_NEGO_TIMEOUT = 55;
/** VSS FREEZE timeout (seconds); other VSS operations use HV_UTIL_TIMEOUT. */
export const VSS_FREEZE_TIMEOUT = 15 * 60;

/** enum hvutil_device_state (drivers/hv/hyperv_vmbus.h) */
export const HVUTIL_DEVICE_INIT = 0;
export const HVUTIL_READY = 1;
export const HVUTIL_HOSTMSG_RECEIVED = 2;
export const HVUTIL_USERSPACE_REQ = 3;
export const HVUTIL_USERSPACE_RECV = 4;
export const HVUTIL_DEVICE_DYING = 5;

// ---- filesystem freeze ioctls (include/uapi/linux/fs.h: _IOWR('X', 119/120, int)) ----
export const FIFREEZE = 0xc0045877;
export const FITHAW = 0xc0045878;
