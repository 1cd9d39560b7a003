// A small XML reader for the JUnit reports the conformance specs check: elements, attributes,
// text and the five predefined entities, enough to check a report's structure without trusting
// the writer's own string building. Throws on anything malformed (mismatched tags, stray '<').

export interface XmlElement {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decode(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith("#x")) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith("#")) return String.fromCodePoint(parseInt(e.slice(1), 10));
    const v = ENTITIES[e];
    if (v === undefined) throw new Error(`unknown entity ${m}`);
    return v;
  });
}

export function parseXml(text: string): XmlElement {
  let i = 0;
  const skipWs = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  skipWs();
  if (text.startsWith("<?xml", i)) {
    const end = text.indexOf("?>", i);
    if (end < 0) throw new Error("unterminated XML declaration");
    i = end + 2;
  }
  skipWs();
  const element = (): XmlElement => {
    if (text[i] !== "<") throw new Error(`expected '<' at ${i}`);
    i++;
    const name = /^[A-Za-z_][\w.:-]*/.exec(text.slice(i))?.[0];
    if (!name) throw new Error(`expected an element name at ${i}`);
    i += name.length;
    const attrs: Record<string, string> = {};
    for (;;) {
      skipWs();
      if (text.startsWith("/>", i)) {
        i += 2;
        return { name, attrs, children: [], text: "" };
      }
      if (text[i] === ">") {
        i++;
        break;
      }
      const m = /^([A-Za-z_][\w.:-]*)="([^"<]*)"/.exec(text.slice(i));
      if (!m) throw new Error(`bad attribute in <${name}> at ${i}: ${text.slice(i, i + 40)}`);
      if (m[1]! in attrs) throw new Error(`attribute ${m[1]} twice in <${name}>`);
      attrs[m[1]!] = decode(m[2]!);
      i += m[0].length;
    }
    const el: XmlElement = { name, attrs, children: [], text: "" };
    for (;;) {
      const lt = text.indexOf("<", i);
      if (lt < 0) throw new Error(`unterminated <${name}>`);
      el.text += decode(text.slice(i, lt));
      i = lt;
      if (text.startsWith("</", i)) {
        const close = `</${name}>`;
        if (!text.startsWith(close, i)) throw new Error(`expected ${close} at ${i}, found ${text.slice(i, i + 30)}`);
        i += close.length;
        return el;
      }
      el.children.push(element());
    }
  };
  const root = element();
  skipWs();
  if (i !== text.length) throw new Error(`content after the root element at ${i}`);
  return root;
}

export const childrenNamed = (e: XmlElement, name: string) => e.children.filter((c) => c.name === name);
