/**
 * What the command assembler is built with (its limits and their defaults) and what each push answers.
 * Re-exported by `imap-parser.ts`.
 */
import { IMAP_LITERAL_MINUS_MAX, IMAP_MAX_COMMAND_VALUES, IMAP_MAX_LITERAL_SIZE, IMAP_MAX_NESTING_DEPTH } from './imap-options.js';
import type { ImapParseError } from './imap-parse-error.js';
import type { ImapCommand, ImapValue } from './imap-values.js';

/** Bounds on one command. Every field is enforced by the assembler. */
export interface ImapParserLimits {
  /** Largest synchronizing literal accepted (APPEND message size limit). */
  readonly maxLiteralSize: number;
  /** Largest `{N+}` literal: RFC 7888 §5 LITERAL- caps it at 4096; with LITERAL+ set it to maxLiteralSize. */
  readonly maxNonSyncLiteralSize: number;
  /** Lines plus literals of one command. */
  readonly maxCommandSize: number;
  /** Nesting depth of lists and sections. */
  readonly maxDepth: number;
  /** Values in the whole command (list items included). */
  readonly maxArgs: number;
}

/** Defaults, from the IMAP limits in `imap-options.ts`: APPEND size, LITERAL- (RFC 7888 §5), depth and values. */
export const DEFAULT_PARSER_LIMITS: ImapParserLimits = {
  maxLiteralSize: IMAP_MAX_LITERAL_SIZE,
  maxNonSyncLiteralSize: IMAP_LITERAL_MINUS_MAX,
  maxCommandSize: IMAP_MAX_LITERAL_SIZE + 1024 * 1024,
  maxDepth: IMAP_MAX_NESTING_DEPTH,
  maxArgs: IMAP_MAX_COMMAND_VALUES,
};

/**
 * What to do after a push:
 * - `complete`: the command is whole; the assembler is reset.
 * - `literal`: read exactly `size` octets and pass them to `pushLiteral`. For `sync`, first send
 *   `+ …` (RFC 3501 §7.5); the assembler already checked its limits. `args` are the values so far (to check an
 *   APPEND target before accepting). To refuse it anyway, answer, call `reset()`, and for a non-sync literal close.
 * - `more`: (after a literal) read the next line and pass it to `pushLine`.
 * - `error`: answer BAD/NO per `error`; the assembler is reset.
 */
export type AssemblerResult =
  | { readonly kind: 'complete'; readonly command: ImapCommand }
  | {
      readonly kind: 'literal';
      readonly size: number;
      readonly sync: boolean;
      readonly binary: boolean;
      readonly tag: string;
      readonly command: string;
      readonly args: readonly ImapValue[];
    }
  | { readonly kind: 'more' }
  | { readonly kind: 'error'; readonly error: ImapParseError };
