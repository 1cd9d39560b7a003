/*
 * mytimer: a small ACPI PM timer that speaks QEMU's qtest protocol on stdin/stdout, written for
 * docs/own-target.md. It implements hvsim's `acpi` machine: one 32-bit counter register (FADT
 * TMR_VAL_EXT) at port 0x408, counting 3,579,545 ticks per virtual second; every other port
 * reads all ones and ignores writes. Build with -DTMR_24 for the 24-bit register (`acpi24`).
 *
 *   cc -O2 -Wall -Werror -o mytimer mytimer.c
 *   hvsim conform --target qtest:./mytimer --machine acpi --suite pmtimer
 *
 * Two deliberately wrong variants, for the guide:
 *   -DOFF_BY_ONE   rounds the tick count up instead of down (one tick ahead almost always)
 *   -DWRONG_WRAP   multiplies in 64 bits: ns * 3579545 wraps at 2^64, from 5153 s on
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PM_TMR 0x408
#define PM_FREQ 3579545u
#define NS_PER_S 1000000000u

static uint64_t now_ns; /* the virtual clock: moves only by clock_step / clock_set */

/* The register: floor(ns * 3579545 / 1e9), cut to its 24 or 32 bits. */
static uint32_t counter(void)
{
#if defined(WRONG_WRAP)
	uint64_t ticks = now_ns * PM_FREQ / NS_PER_S;
#elif defined(OFF_BY_ONE)
	uint64_t ticks = (uint64_t)(((unsigned __int128)now_ns * PM_FREQ + NS_PER_S - 1) / NS_PER_S);
#else
	uint64_t ticks = (uint64_t)((unsigned __int128)now_ns * PM_FREQ / NS_PER_S);
#endif
#ifdef TMR_24
	return (uint32_t)(ticks & 0xffffff);
#else
	return (uint32_t)ticks;
#endif
}

/* A number as qtest reads it (strtoul, base 0: 0x.. hex, 0.. octal, decimal); 0 on success. */
static int number(const char *word, uint64_t *out)
{
	char *end;

	if (word == NULL || *word == '\0' || *word == '-')
		return -1;
	*out = strtoull(word, &end, 0);
	return *end == '\0' ? 0 : -1;
}

static void in(unsigned port, unsigned size)
{
	uint64_t ones = size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
	uint64_t v = ones;

	/* Byte lanes: a read at PM_TMR + k starts at byte k of the register. */
	if (port >= PM_TMR && port < PM_TMR + 4)
		v = ((uint64_t)counter() >> (8 * (port - PM_TMR))) & ones;
	printf("OK 0x%04llx\n", (unsigned long long)v);
}

static void handle(char *line)
{
	char *cmd = strtok(line, " "), *a = strtok(NULL, " "), *b = strtok(NULL, " ");
	uint64_t x, y;

	if (cmd == NULL) {
		printf("FAIL Unknown command ''\n");
	} else if (strcmp(cmd, "clock_step") == 0) {
		if (a != NULL && number(a, &x) != 0)
			printf("FAIL invalid number '%s'\n", a);
		else {
			/* Without an argument: to the next timer deadline; this timer has none. */
			if (a != NULL)
				now_ns += x;
			printf("OK %llu\n", (unsigned long long)now_ns);
		}
	} else if (strcmp(cmd, "clock_set") == 0) {
		if (number(a, &x) != 0)
			printf("FAIL invalid number '%s'\n", a ? a : "");
		else {
			if (x > now_ns) /* the clock never goes back */
				now_ns = x;
			printf("OK %llu\n", (unsigned long long)now_ns);
		}
	} else if (strlen(cmd) == 3 && strncmp(cmd, "in", 2) == 0 && strchr("bwl", cmd[2])) {
		if (number(a, &x) != 0 || x > 0xffff)
			printf("FAIL invalid port '%s'\n", a ? a : "");
		else
			in((unsigned)x, cmd[2] == 'b' ? 1 : cmd[2] == 'w' ? 2 : 4);
	} else if (strlen(cmd) == 4 && strncmp(cmd, "out", 3) == 0 && strchr("bwl", cmd[3])) {
		if (number(a, &x) != 0 || x > 0xffff || number(b, &y) != 0)
			printf("FAIL invalid arguments\n");
		else
			printf("OK\n"); /* PM_TMR is read-only and nothing else is decoded */
	} else {
		printf("FAIL Unknown command '%s'\n", cmd);
	}
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		handle(line);
		fflush(stdout); /* one reply per command, sent at once */
	}
	free(line);
	return 0;
}
