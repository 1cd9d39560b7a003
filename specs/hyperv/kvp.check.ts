// Conformance checks for the KVP integration service: hvsim's host and hv_utils kernel with a KVP
// daemon behind /dev/vmbus/hv_kvp (the model, or Debian's hv_kvp_daemon on hv-daemon:kvp).
// Golden facts (model) from /work/shared/research/hyperv.md, i.e. Linux 6.1.192 include/uapi/
// linux/hyperv.h, drivers/hv/hv_kvp.c, hv_utils_transport.c, channel_mgmt.c and tools/hv/
// hv_kvp_daemon.c: REGISTER1 = 100, sizeof(hv_kvp_msg) = 7432, the kernel's registration reply
// carries version "3.1"; KVP negotiation picks framework 3.0 / service 4.0 from the host's offer;
// answers carry ICMSGHDRFLAG_TRANSACTION|RESPONSE (1|4); HV_S_OK 0, HV_E_FAIL 0x80004005,
// HV_S_CONT 0x80070103 (missing key, enumeration past the end); REG_U32 values reach the daemon as
// decimal strings; ENUMERATE answers are REG_SZ (1) with sizes 2*(n+1); AUTO pool indices 0-9 in the
// daemon's fixed order, index 1 "3.1", >= 10 HV_S_CONT. AUTO values of the pinned identity
// (HV_IDENTITY: hostname hvsim-guest, fqdn hvsim-guest.hvsim.test, uname release
// 6.1.0-hvsim-amd64 / x86_64, os-release NAME "Debian GNU/Linux" VERSION_ID "12", eth0 with
// 192.0.2.10/24 and 2001:db8::10/64) as Debian's hv_kvp_daemon 6.1.192 reports them (OSVersion is
// the release up to its first '-', OSMinorVersion empty for a VERSION_ID without a dot).
import { hypervCheck, answer, expectStep } from "./conform.ts";
import { K } from "../../sim/devices/hyperv/frames.ts";
import type { HypervSession } from "../../sim/conform/hyperv-session.ts";

const S_OK = "0x0";
const E_FAIL = "0x80004005";
const S_CONT = "0x80070103";
const FLAGS = 1 | 4;
const GET_DEVS = ["kvp-get-value-size", "kvp-get-value-offset"];

const AUTO: [string, string][] = [
  ["FullyQualifiedDomainName", "hvsim-guest.hvsim.test"],
  ["IntegrationServicesVersion", "3.1"],
  ["NetworkAddressIPv4", "192.0.2.10"],
  ["NetworkAddressIPv6", "2001:db8::10"],
  ["OSBuildNumber", "6.1.0-hvsim-amd64"],
  ["OSName", "Debian GNU/Linux"],
  ["OSMajorVersion", "12"],
  ["OSMinorVersion", ""],
  ["OSVersion", "6.1.0"],
  ["ProcessorArchitecture", "x86_64"],
];

function cstring(b: Uint8Array, off: number, max: number): string {
  let n = 0;
  while (n < max && off + n < b.length && b[off + n] !== 0) n++;
  return new TextDecoder().decode(b.subarray(off, off + n));
}

/** The device calls of a registration: open, the daemon's write, its read of the reply. */
function registration(s: HypervSession): unknown[] {
  return s.takeDevice().map((d) => {
    if (d.call === "read") return { call: "read", len: d.len, op: d.bytes[0], version: cstring(d.bytes, K.version, 512) };
    return d;
  });
}

const POOL_KEYS: [string, string | { u32: number }][] = [
  ["hvsim-a", "alpha"],
  ["hvsim-b", { u32: 42 }],
  ["hvsim-ü", "ωmega ✓"],
];

export const checks = [
  hypervCheck({
    id: "kvp/register",
    title: "KVP daemon registration: REGISTER1 (100, 7432 bytes), the kernel's \"3.1\" reply, READY; negotiation 3.0/4.0",
    service: "kvp",
    async script(s, t) {
      t.add("device", registration(s));
      t.add("state", s.state());
      t.add("negotiate", answer(await s.negotiate()));
      t.add("state-after", s.state());
    },
    golden(t) {
      const out: string[] = [];
      expectStep(out, t, "device", [
        { call: "open", ret: 0 },
        { call: "write", len: 7432, op: 100, ret: 7432 },
        { call: "read", len: 7432, op: 100, version: "3.1" },
      ]);
      expectStep(out, t, "state", "READY");
      expectStep(out, t, "negotiate", { status: S_OK, icflags: FLAGS, fwCount: 1, msgCount: 1, framework: "3.0", service: "4.0", icmsgsize: 16 });
      return out;
    },
  }),

  hypervCheck({
    id: "kvp/pools",
    title: "KVP SET/GET/DELETE/ENUMERATE on every pool (0-4), answers value for value",
    service: "kvp",
    async script(s, t) {
      for (let pool = 0; pool <= 4; pool++) {
        for (const [k, v] of POOL_KEYS) t.add(`p${pool} set ${k}`, answer(await s.kvp({ op: "set", pool, key: k, value: v })));
        t.add(`p${pool} set hvsim-a again`, answer(await s.kvp({ op: "set", pool, key: "hvsim-a", value: "alpha 2" })));
        for (const k of ["hvsim-a", "hvsim-b", "hvsim-ü", "missing"]) t.add(`p${pool} get ${k}`, answer(await s.kvp({ op: "get", pool, key: k })), GET_DEVS);
        for (let i = 0; i < 4; i++) t.add(`p${pool} enum ${i}`, answer(await s.kvp({ op: "enumerate", pool, index: i })));
        t.add(`p${pool} delete hvsim-b`, answer(await s.kvp({ op: "delete", pool, key: "hvsim-b" })));
        t.add(`p${pool} delete missing`, answer(await s.kvp({ op: "delete", pool, key: "missing" })));
        t.add(`p${pool} get hvsim-b after delete`, answer(await s.kvp({ op: "get", pool, key: "hvsim-b" })), GET_DEVS);
        for (let i = 0; i < 3; i++) t.add(`p${pool} enum ${i} after delete`, answer(await s.kvp({ op: "enumerate", pool, index: i })));
      }
    },
    golden(t, profile) {
      const out: string[] = [];
      const status = (label: string): unknown => (t.get(label) as { status?: string } | undefined)?.status;
      const want = (label: string, st: string) => {
        if (status(label) !== st) out.push(`${label}: status ${String(status(label))}, expected ${st}`);
      };
      for (let pool = 0; pool <= 4; pool++) {
        for (const [k] of POOL_KEYS) want(`p${pool} set ${k}`, S_OK);
        want(`p${pool} get missing`, S_CONT);
        want(`p${pool} delete hvsim-b`, S_OK);
        want(`p${pool} delete missing`, S_CONT);
        want(`p${pool} get hvsim-b after delete`, S_CONT);
        // GET: under spec the stored value comes back (a REG_U32 as its decimal string); under
        // linux-6.1 the daemon is asked for 0 bytes and the kernel reads at the wrong offset: "".
        const gets: [string, string][] = [
          ["hvsim-a", "alpha 2"],
          ["hvsim-b", "42"],
          ["hvsim-ü", "ωmega ✓"],
        ];
        for (const [k, v] of gets) {
          const g = t.get(`p${pool} get ${k}`) as { status?: string; value?: string; key?: string; valueType?: number } | undefined;
          const expect = profile === "spec" ? v : "";
          if (g?.status !== S_OK || g.value !== expect || g.key !== k || g.valueType !== 1) out.push(`p${pool} get ${k}: ${JSON.stringify(g)}, expected status 0 key ${k} value ${JSON.stringify(expect)} REG_SZ`);
        }
        if (pool === 2) {
          // ENUMERATE of the AUTO pool lists the AUTO keys, whatever was SET into its file.
          for (let i = 0; i < 4; i++) {
            const e = t.get(`p2 enum ${i}`) as { key?: string; value?: string } | undefined;
            if (e?.key !== AUTO[i]![0] || e.value !== AUTO[i]![1]) out.push(`p2 enum ${i}: ${JSON.stringify(e)}, expected ${AUTO[i]!.join("=")}`);
          }
          continue;
        }
        const entries = [0, 1, 2].map((i) => t.get(`p${pool} enum ${i}`) as { status?: string; key?: string; value?: string; keySize?: number; valueSize?: number; valueType?: number });
        const keys = entries.map((e) => `${e.key}=${e.value}`).sort();
        if (JSON.stringify(keys) !== JSON.stringify(["hvsim-a=alpha 2", "hvsim-b=42", "hvsim-ü=ωmega ✓"])) out.push(`p${pool} enum 0-2: ${JSON.stringify(keys)}`);
        for (const e of entries) {
          if (e.status !== S_OK || e.valueType !== 1 || e.keySize !== 2 * ((e.key ?? "").length + 1) || e.valueSize !== 2 * ((e.value ?? "").length + 1)) out.push(`p${pool} enum entry ${JSON.stringify(e)}: expected status 0, REG_SZ, sizes 2*(units+1)`);
        }
        want(`p${pool} enum 3`, S_CONT);
        want(`p${pool} enum 2 after delete`, S_CONT);
        const after = [0, 1].map((i) => (t.get(`p${pool} enum ${i} after delete`) as { key?: string }).key).sort();
        if (JSON.stringify(after) !== JSON.stringify(["hvsim-a", "hvsim-ü"])) out.push(`p${pool} after delete: ${JSON.stringify(after)}`);
      }
      return out;
    },
  }),

  hypervCheck({
    id: "kvp/auto",
    title: "KVP AUTO pool: the ten keys of a pinned identity, IntegrationServicesVersion 3.1, HV_S_CONT past the end",
    service: "kvp",
    async script(s, t) {
      for (let i = 0; i <= 10; i++) t.add(`auto ${i}`, answer(await s.kvp({ op: "enumerate", pool: 2, index: i })));
    },
    golden(t) {
      const out: string[] = [];
      AUTO.forEach(([k, v], i) => {
        const e = t.get(`auto ${i}`) as { status?: string; key?: string; value?: string; index?: number } | undefined;
        if (e?.status !== S_OK || e.key !== k || e.value !== v || e.index !== i) out.push(`auto ${i}: ${JSON.stringify(e)}, expected ${k}=${JSON.stringify(v)}`);
      });
      const end = t.get("auto 10") as { status?: string } | undefined;
      if (end?.status !== S_CONT) out.push(`auto 10: status ${end?.status}, expected ${S_CONT}`);
      return out;
    },
  }),

  hypervCheck({
    id: "kvp/utf16-units",
    title: "KVP SET whose key_size (6 bytes) covers 3 of the key's 6 UTF-16 units: what key the daemon stores",
    service: "kvp",
    async script(s, t) {
      t.add("set", answer(await s.kvp({ op: "set", pool: 1, key: "abcdef", value: "v", overrides: { keySize: 6 } })));
      t.add("enum 0", answer(await s.kvp({ op: "enumerate", pool: 1, index: 0 })), ["kvp-utf16-length-units"]);
    },
    golden(t, profile) {
      const out: string[] = [];
      // linux-6.1 converts key_size UTF-16 *units* (6, up to the NUL): "abcdef"; spec key_size/2 = 3.
      const e = t.get("enum 0") as { key?: string; status?: string } | undefined;
      const want = profile === "spec" ? "abc" : "abcdef";
      if (e?.status !== S_OK || e.key !== want) out.push(`enum 0: ${JSON.stringify(e)}, expected key ${want}`);
      return out;
    },
  }),

  hypervCheck({
    id: "kvp/crash",
    title: "KVP daemon killed mid-transaction: the host gets HV_E_FAIL, the bench goes on, the daemon re-registers and the pool survives",
    service: "kvp",
    async script(s, t) {
      t.add("set survivor", answer(await s.kvp({ op: "set", pool: 0, key: "survivor", value: "still here" })));
      s.takeDevice();
      t.add("crash", answer(await s.crashDuring({ kvp: { op: "set", pool: 1, key: "doomed", value: "x" } })));
      t.add("state after crash", s.state());
      t.add("device at crash", registration(s));
      await s.restart();
      t.add("device after restart", registration(s));
      t.add("state after restart", s.state());
      t.add("enum survivor", answer(await s.kvp({ op: "enumerate", pool: 0, index: 0 })));
      t.add("get survivor", answer(await s.kvp({ op: "get", pool: 0, key: "survivor" })), GET_DEVS);
      t.add("enum doomed pool", answer(await s.kvp({ op: "enumerate", pool: 1, index: 0 })));
    },
    golden(t, profile) {
      const out: string[] = [];
      // Killed at "before-apply" (right after its read returned): the SET was never applied, pool 1
      // is empty (hv_kvp_daemon.c:407-408 kvp_pool_enumerate: an index past the end -> HV_S_CONT).
      const d = t.get("enum doomed pool") as { status?: string } | undefined;
      if (d?.status !== S_CONT) out.push(`enum doomed pool: ${JSON.stringify(d)}, expected status ${S_CONT}`);
      expectStep(out, t, "crash", { status: E_FAIL, icflags: FLAGS });
      expectStep(out, t, "state after crash", "DEVICE_INIT");
      expectStep(out, t, "state after restart", "READY");
      // The daemon read the SET (op 1), then the kernel saw the release of its file.
      expectStep(out, t, "device at crash", [{ call: "read", len: 7432, op: 1, version: "" }, { call: "close" }]);
      expectStep(out, t, "device after restart", [
        { call: "open", ret: 0 },
        { call: "write", len: 7432, op: 100, ret: 7432 },
        { call: "read", len: 7432, op: 100, version: "3.1" },
      ]);
      const e = t.get("enum survivor") as { key?: string; value?: string } | undefined;
      if (e?.key !== "survivor" || e.value !== "still here") out.push(`enum survivor: ${JSON.stringify(e)}`);
      const g = t.get("get survivor") as { status?: string; value?: string } | undefined;
      if (g?.status !== S_OK || g.value !== (profile === "spec" ? "still here" : "")) out.push(`get survivor: ${JSON.stringify(g)}`);
      return out;
    },
  }),

  hypervCheck({
    id: "kvp/crash-after-apply",
    title: "KVP daemon killed in the write of its answer to a SET (after applying it): HV_E_FAIL, and the restarted daemon has the record",
    service: "kvp",
    async script(s, t) {
      s.takeDevice();
      t.add("crash", answer(await s.crashDuring({ kvp: { op: "set", pool: 1, key: "applied", value: "yes" } }, "after-apply")));
      t.add("device at crash", registration(s));
      await s.restart();
      s.takeDevice();
      t.add("enum pool 1", answer(await s.kvp({ op: "enumerate", pool: 1, index: 0 })));
      t.add("enum pool 1 next", answer(await s.kvp({ op: "enumerate", pool: 1, index: 1 })));
    },
    golden(t) {
      const out: string[] = [];
      expectStep(out, t, "crash", { status: E_FAIL, icflags: FLAGS }); // kvp_on_reset (hv_kvp.c) answers the pending request
      // The answer's write never reached the kernel: the kernel saw the read, then the release.
      expectStep(out, t, "device at crash", [{ call: "read", len: 7432, op: 1, version: "" }, { call: "close" }]);
      // hv_kvp_daemon.c:1524 kvp_key_add_or_modify wrote the pool file (:163 fwrite) before :1628's
      // write of the answer: the record is there for the next process (:195 fread on every op).
      const e = t.get("enum pool 1") as { status?: string; key?: string; value?: string } | undefined;
      if (e?.status !== S_OK || e.key !== "applied" || e.value !== "yes") out.push(`enum pool 1: ${JSON.stringify(e)}`);
      const n = t.get("enum pool 1 next") as { status?: string } | undefined;
      if (n?.status !== S_CONT) out.push(`enum pool 1 next: ${JSON.stringify(n)}`);
      return out;
    },
  }),
];
