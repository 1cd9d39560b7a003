/*
 * Prints sizes, member offsets and constants of include/uapi/linux/hyperv.h (the installed
 * /usr/include/linux/hyperv.h from linux-libc-dev) as "name value" lines, as gcc lays them out.
 * Specs build KVP/VSS messages from these numbers instead of hard-coding them.
 */
#include <linux/hyperv.h>
#include <stddef.h>
#include <stdio.h>

#define P(name, expr) printf("%s %llu\n", name, (unsigned long long)(expr))
#define OFF(name, type, member) P(name, offsetof(type, member))

int main(void)
{
	P("hv_kvp_msg.size", sizeof(struct hv_kvp_msg));
	OFF("hv_kvp_msg.error", struct hv_kvp_msg, error);
	OFF("hv_kvp_msg.operation", struct hv_kvp_msg, kvp_hdr.operation);
	OFF("hv_kvp_msg.pool", struct hv_kvp_msg, kvp_hdr.pool);
	OFF("hv_kvp_msg.register.version", struct hv_kvp_msg, body.kvp_register.version);
	OFF("hv_kvp_msg.set.key_size", struct hv_kvp_msg, body.kvp_set.data.key_size);
	OFF("hv_kvp_msg.set.value_size", struct hv_kvp_msg, body.kvp_set.data.value_size);
	OFF("hv_kvp_msg.set.key", struct hv_kvp_msg, body.kvp_set.data.key);
	OFF("hv_kvp_msg.set.value", struct hv_kvp_msg, body.kvp_set.data.value);
	OFF("hv_kvp_msg.get.key_size", struct hv_kvp_msg, body.kvp_get.data.key_size);
	OFF("hv_kvp_msg.get.value_size", struct hv_kvp_msg, body.kvp_get.data.value_size);
	OFF("hv_kvp_msg.get.key", struct hv_kvp_msg, body.kvp_get.data.key);
	OFF("hv_kvp_msg.get.value", struct hv_kvp_msg, body.kvp_get.data.value);
	OFF("hv_kvp_msg.enum.index", struct hv_kvp_msg, body.kvp_enum_data.index);
	OFF("hv_kvp_msg.enum.key", struct hv_kvp_msg, body.kvp_enum_data.data.key);
	OFF("hv_kvp_msg.enum.value", struct hv_kvp_msg, body.kvp_enum_data.data.value);
	P("hv_vss_msg.size", sizeof(struct hv_vss_msg));
	OFF("hv_vss_msg.error", struct hv_vss_msg, error);
	OFF("hv_vss_msg.operation", struct hv_vss_msg, vss_hdr.operation);
	P("HV_KVP_EXCHANGE_MAX_KEY_SIZE", HV_KVP_EXCHANGE_MAX_KEY_SIZE);
	P("HV_KVP_EXCHANGE_MAX_VALUE_SIZE", HV_KVP_EXCHANGE_MAX_VALUE_SIZE);
	P("KVP_OP_REGISTER1", KVP_OP_REGISTER1);
	P("KVP_OP_GET", KVP_OP_GET);
	P("KVP_OP_SET", KVP_OP_SET);
	P("KVP_OP_ENUMERATE", KVP_OP_ENUMERATE);
	P("KVP_POOL_EXTERNAL", KVP_POOL_EXTERNAL);
	P("KVP_POOL_AUTO", KVP_POOL_AUTO);
	P("VSS_OP_REGISTER1", VSS_OP_REGISTER1);
	P("VSS_OP_FREEZE", VSS_OP_FREEZE);
	P("VSS_OP_THAW", VSS_OP_THAW);
	P("HV_S_OK", HV_S_OK);
	P("HV_S_CONT", HV_S_CONT);
	P("HV_E_FAIL", HV_E_FAIL);
	return 0;
}
