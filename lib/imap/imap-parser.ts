/**
 * Incremental IMAP command parser (RFC 3501 §9 / RFC 9051 §9 grammar, RFC 7888 literals).
 *
 * The line reader hands over one line at a time (CRLF stripped). A line that ends in a literal announcement
 * (`{N}`, `{N+}`, `~{N}`) makes {@link ImapCommandAssembler.pushLine} ask for N octets, which the session
 * reads and passes to {@link ImapCommandAssembler.pushLiteral}; the next line continues the same command.
 * Parsing is purely syntactic: command names and argument shapes are checked by the command table.
 *
 * This module is what callers import: the assembler (`imap-command-assembler.ts`), its limits and results
 * (`imap-parser-options.ts`), its refusals (`imap-parse-error.ts`) and the value types (`imap-values.ts`) are
 * re-exported from here.
 */
import { ImapCommandAssembler } from './imap-command-assembler.js';
import { ImapParseError } from './imap-parse-error.js';
import type { ImapParserLimits } from './imap-parser-options.js';
import type { ImapCommand } from './imap-values.js';

export { ImapCommandAssembler } from './imap-command-assembler.js';
export { announcedLiteral, ImapParseError } from './imap-parse-error.js';
export type { AnnouncedLiteral, ImapParseErrorReason } from './imap-parse-error.js';
export { DEFAULT_PARSER_LIMITS } from './imap-parser-options.js';
export type { AssemblerResult, ImapParserLimits } from './imap-parser-options.js';
export { isAtomNamed, valueBytes, valueText } from './imap-values.js';
export type { ImapAtom, ImapCommand, ImapList, ImapLiteral, ImapNil, ImapNumber, ImapQuoted, ImapSection, ImapSequence, ImapValue, SectionAttName } from './imap-values.js';

/**
 * Parses a complete command given as wire text (lines joined by CRLF, literal octets inline), e.g.
 * `a1 LOGIN {3}\r\nbob "pw"`. For tests and tools; throws {@link ImapParseError}.
 */
export function parseCommandText(wire: string | Buffer, limits: Partial<ImapParserLimits> = {}): ImapCommand {
  const data = typeof wire === 'string' ? Buffer.from(wire, 'utf8') : wire;
  const asm = new ImapCommandAssembler(limits);
  let pos = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', pos);
    const end = eol < 0 ? data.length : eol;
    const result = asm.pushLine(data.subarray(pos, end));
    pos = end + 2;
    if (result.kind === 'complete') return result.command;
    if (result.kind === 'error') throw result.error;
    if (result.kind === 'literal') {
      if (pos + result.size > data.length) throw new ImapParseError('Literal truncated', result.tag);
      asm.pushLiteral(data.subarray(pos, pos + result.size));
      pos += result.size;
    }
  }
}
