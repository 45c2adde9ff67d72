/**
 * Goal: XML in and out is exact. Keys with any character round-trip through the response
 * escaping and the request decoding; malformed or entity-laden bodies are MalformedXML.
 * Method: fast-check round trips through renderXml → parseXml, plus tables of bad inputs.
 */
import test from 'ava';
import fc from 'fast-check';
import { decodeXmlText, escapeText, parseXml, renderXml } from '../../../src/s3/xml.ts';

test('any key without NUL survives render → parse unchanged (CR, LF, controls, astral)', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0') && s.isWellFormed()), (key) => {
      const xml = renderXml('Delete', { Object: [{ Key: key }] }, false);
      const parsed = parseXml(xml, 'Delete') as { Object: { Key: string } };
      t.is(parsed.Object.Key, key);
    }),
    { numRuns: 300 },
  );
});

test('numeric character references and the five predefined entities decode exactly', (t) => {
  t.is(decodeXmlText('x&#1;y'), 'x\u0001y');
  t.is(decodeXmlText('num&#x61;ref'), 'numaref');
  t.is(decodeXmlText('&#34;etag&#34;'), '"etag"');
  t.is(decodeXmlText('a&#x0D;&#x0A;b'), 'a\r\nb');
  t.is(decodeXmlText('&lt;&gt;&amp;&quot;&apos;'), `<>&"'`);
  t.is(decodeXmlText('&#x1F600;'), '\u{1F600}');
  t.is(escapeText('a\r\nb<&'), 'a&#xD;&#xA;b&lt;&amp;');
});

test('undeclared entities, NUL references, DTDs and broken documents are MalformedXML', (t) => {
  for (const text of ['&nbsp;', '&#0;', '&#x110000;', '&#xD800;', 'a & b', '&#;']) {
    t.throws(() => decodeXmlText(text), { message: /not well-formed/ }, text);
  }
  for (const body of ['', 'not xml', '<Delete><Object></Delete>', '<!DOCTYPE d [<!ENTITY a "x">]><Delete/>', '<Other/>']) {
    t.throws(() => parseXml(body, 'Delete'), { message: /not well-formed/ }, body);
  }
});
