/**
 * BODY and BODYSTRUCTURE (RFC 3501 §7.4.2 and §9 `body`, RFC 9051 §7.5.2) from a {@link MimePart} tree.
 *
 * Output follows Dovecot where the RFC leaves a choice: media type, subtype and encoding keep the case written in
 * the message, parameter names are lower-cased, a missing Content-Type is `"text" "plain" ("charset" "us-ascii")`,
 * a missing encoding is `"7bit"`, Content-Language is always a list.
 */
import { concat, type ImapResponseValue } from './imap-format.js';
import { buildEnvelope } from './imap-envelope.js';
import { headerValue, parseHeaderParams, type MimePart } from './imap-mime.js';

type Params = ImapResponseValue;

/** `body-fld-param`: `("key" "value" …)` or NIL. */
function paramList(params: ReadonlyArray<readonly [string, string]>): Params {
  return params.length === 0 ? null : params.flatMap(([k, v]) => [k, v]);
}

/** Type and subtype as written in Content-Type (Dovecot keeps the case), else the defaults. */
function mediaType(part: MimePart): [string, string] {
  const written = part.contentType?.value;
  const slash = written?.indexOf('/') ?? -1;
  if (written === undefined || slash < 0) return [part.type, part.subtype];
  return [written.slice(0, slash).trim(), written.slice(slash + 1).trim()];
}

/** `body-fld-param` of a leaf: text parts without parameters get `("charset" "us-ascii")` (RFC 2045 §5.2). */
function leafParams(part: MimePart): Params {
  const params = part.contentType?.params ?? [];
  if (params.length === 0 && part.type === 'text') return ['charset', 'us-ascii'];
  return paramList(params);
}

function nstring(part: MimePart, name: string): string | null {
  return headerValue(part.fields, name) ?? null;
}

/** `body-fld-dsp`: `("attachment" ("filename" "a.pdf"))` or NIL (RFC 2183). */
function disposition(part: MimePart): ImapResponseValue {
  const value = headerValue(part.fields, 'content-disposition');
  if (value === undefined) return null;
  const parsed = parseHeaderParams(value);
  if (parsed.value === '') return null;
  return [parsed.value, paramList(parsed.params)];
}

/** `body-fld-lang`: list of RFC 3282 language tags, or NIL. */
function language(part: MimePart): ImapResponseValue {
  const value = headerValue(part.fields, 'content-language');
  if (value === undefined) return null;
  const tags = value
    .replace(/\([^)]*\)/g, '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  return tags.length > 0 ? tags : null;
}

/** Extension data shared by both shapes: disposition, language, location. */
function extTail(part: MimePart): ImapResponseValue[] {
  return [disposition(part), language(part), nstring(part, 'content-location')];
}

/**
 * Builds BODYSTRUCTURE (`extended` true) or BODY (`extended` false) for a part. Pass the root of
 * {@link parseMime} for the message. Nested message/rfc822 parts carry the envelope, body structure and line
 * count of the embedded message.
 */
export function buildBodyStructure(part: MimePart, extended: boolean): ImapResponseValue[] {
  const [type, subtype] = mediaType(part);
  if (part.children.length > 0) {
    const out: ImapResponseValue[] = [concat(part.children.map((child) => buildBodyStructure(child, extended))), subtype];
    if (extended) out.push(paramList(part.contentType?.params ?? []), ...extTail(part));
    return out;
  }
  const out: ImapResponseValue[] = [
    type,
    subtype,
    leafParams(part),
    nstring(part, 'content-id'),
    nstring(part, 'content-description'),
    headerValue(part.fields, 'content-transfer-encoding') ?? '7bit',
    part.end - part.bodyStart,
  ];
  if (part.message) {
    out.push(buildEnvelope(part.message.fields), buildBodyStructure(part.message, extended), part.bodyLines);
  } else if (part.type === 'text') {
    out.push(part.bodyLines);
  }
  if (extended) out.push(nstring(part, 'content-md5'), ...extTail(part));
  return out;
}
