/**
 * XML in and out, with fast-xml-parser. Responses: a JS object tree → S3's XML with the
 * 2006-03-01 namespace. Requests: bounded-size bodies validated first (MalformedXML), then parsed.
 *
 * Text is escaped here rather than by the library so that characters XML 1.0 cannot carry
 * (control characters in object keys) become numeric character references, as S3 sends them.
 */
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { S3Error } from './errors.ts';

/** The S3 XML namespace. */
export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** A value in a response tree: text, a nested element, or repeated elements. */
export type XmlValue = string | number | boolean | XmlNode | XmlValue[] | undefined;
/** An element's children by name. */
export interface XmlNode {
  [name: string]: XmlValue;
}

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  processEntities: false,
  suppressEmptyNode: false,
  format: false,
  tagValueProcessor: (_name: string, value: unknown) => escapeText(String(value)),
  attributeValueProcessor: (_name: string, value: unknown) => escapeText(String(value)),
});

/** Renders `<root xmlns=…>…</root>` with the XML declaration. */
export function renderXml(root: string, body: XmlNode, withNamespace = true): string {
  const tree = { [root]: withNamespace ? { '@_xmlns': S3_XMLNS, ...body } : body };
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build(tree)}`;
}

/** Escapes XML text; characters not allowed in XML 1.0 become numeric references. */
export function escapeText(text: string): string {
  // CR and LF are escaped too: a parser would normalise a literal CR LF in text to LF.
  return text.replace(/[&<>"'\u0000-\u001f\ufffe\uffff]/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&apos;';
      case '\t':
        return c;
      default:
        return `&#x${c.charCodeAt(0).toString(16).toUpperCase()};`;
    }
  });
}

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: false,
  // Entities are decoded by decodeXmlText below: the library leaves numeric character
  // references as text (or drops some), and a key like "x&#1;y" must mean exactly "x\u0001y".
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  tagValueProcessor: (_name: string, value: string) => decodeXmlText(value),
});

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * Decodes XML 1.0 text: the five predefined entities and decimal/hex character references.
 * Anything else after '&' (an undeclared entity, &#0;, a code point past U+10FFFF, a bare '&')
 * is not well-formed and answers MalformedXML.
 */
export function decodeXmlText(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&([^;&]*);?/g, (match, name: string) => {
    if (!match.endsWith(';')) throw new S3Error('MalformedXML');
    const predefined = PREDEFINED[name];
    if (predefined !== undefined) return predefined;
    const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(name);
    if (!m) throw new S3Error('MalformedXML');
    const code = m[1] !== undefined ? Number.parseInt(m[1], 16) : Number(m[2]);
    if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) throw new S3Error('MalformedXML');
    return String.fromCodePoint(code);
  });
}

/**
 * Parses a request body. Throws MalformedXML for anything that is not well-formed XML with the
 * expected root element. Entity expansion is limited to XML's predefined entities (no DTDs).
 */
export function parseXml(text: string, root: string): Record<string, unknown> {
  if (text.trim() === '' || /<!DOCTYPE|<!ENTITY/i.test(text)) throw new S3Error('MalformedXML');
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw new S3Error('MalformedXML');
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(text) as Record<string, unknown>;
  } catch {
    throw new S3Error('MalformedXML');
  }
  const top = doc[root];
  if (top === undefined) throw new S3Error('MalformedXML');
  if (top === '') return {};
  if (typeof top !== 'object' || top === null) throw new S3Error('MalformedXML');
  return top as Record<string, unknown>;
}

/** Child elements of `node` named `name` as an array (XML repeats become arrays, singles not). */
export function children(node: Record<string, unknown>, name: string): unknown[] {
  const value = node[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Text of a child element; undefined when absent, MalformedXML when it is not text. */
export function childText(node: Record<string, unknown>, name: string): string | undefined {
  const value = node[name];
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (value === null) return '';
  throw new S3Error('MalformedXML');
}
