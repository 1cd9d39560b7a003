/*
 * The physical limit of the Hyper-V daemon bridge (bench/hyperv/daemon-fuzz.bench.ts): a "KVP
 * daemon" that does nothing but the device syscalls hv_kvp_daemon makes per message, through the
 * same shim and relay. It opens /dev/vmbus/hv_kvp, registers as the real daemon does (one 7432-byte
 * struct hv_kvp_msg write with operation KVP_OP_REGISTER1 = 100; the kernel's reply is read and not
 * answered: hv_kvp_daemon keeps it as the driver version), then for every message polls, reads
 * 7432 bytes and writes one fixed 7432-byte answer (error HV_S_OK = 0 at offset 0, the rest zero).
 * Facts: tools/hv/hv_kvp_daemon.c (poll(POLLIN, -1), read of sizeof(struct hv_kvp_msg), one write
 * of the whole message per request) and include/uapi/linux/hyperv.h (sizes, op numbers), as
 * summarised in /work/shared/research/hyperv.md. No code from those files.
 */
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#define MSG_SIZE 7432
#define KVP_OP_REGISTER1 100

static unsigned char buf[MSG_SIZE];
static unsigned char answer[MSG_SIZE];

int main(void)
{
	int fd = open("/dev/vmbus/hv_kvp", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 1;
	memset(buf, 0, sizeof(buf));
	buf[0] = KVP_OP_REGISTER1;
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		return 1;
	int registered = 0;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, -1) < 0)
			return 1;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n != (ssize_t)sizeof(buf))
			return 1;
		if (!registered) {
			registered = 1; /* the driver's version: not answered */
			continue;
		}
		if (write(fd, answer, sizeof(answer)) != (ssize_t)sizeof(answer))
			return 1;
	}
}
