import { FAULT_STAGES } from '../protocol/faults.js';

/** Every JSON route lives below this prefix (a new incompatible version would get `/api/v2`). */
export const API_PREFIX = '/api/v1';

/** Page size bounds of `GET /api/v1/messages`. */
export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 1000;

/** Query of `GET /api/v1/messages` (JSON Schema, validated by Fastify's Ajv; unknown parameters are refused). */
export const LIST_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE },
    offset: { type: 'integer', minimum: 0, default: 0 },
    to: { type: 'string', maxLength: 320 },
    from: { type: 'string', maxLength: 320 },
    subject: { type: 'string', maxLength: 1000 },
    q: { type: 'string', maxLength: 1000 },
    user: { type: 'string', maxLength: 320 },
    mailbox: { type: 'string', maxLength: 1000 },
  },
} as const;

/** `{id}` of the message routes. */
export const ID_PARAMS = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 2000, pattern: '^[A-Za-z0-9_-]+$' } },
  required: ['id'],
} as const;

/** Body of `POST /api/v1/users`. */
export const USER_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    username: { type: 'string', minLength: 1, maxLength: 320 },
    password: { type: 'string', minLength: 1, maxLength: 1000 },
    addresses: { type: 'array', maxItems: 100, items: { type: 'string', minLength: 3, maxLength: 320 } },
    spec: { type: 'string', minLength: 3, maxLength: 1000 },
  },
} as const;

/**
 * Body of `PUT /api/v1/chaos`, for the OpenAPI description and a first check; `parseChaosConfig` then checks what a
 * schema cannot say (a reply fits its protocol, tls-abort only at starttls) with the same messages as the CLI.
 */
export const CHAOS_BODY = {
  type: 'object',
  required: ['rules'],
  additionalProperties: false,
  properties: {
    seed: { type: 'integer', minimum: 0 },
    rules: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        required: ['protocol', 'stage'],
        additionalProperties: false,
        properties: {
          protocol: { enum: ['smtp', 'lmtp', 'pop3', 'imap'] },
          stage: { enum: [...FAULT_STAGES] },
          action: { enum: ['reply', 'delay', 'disconnect', 'tls-abort', 'throttle'] },
          reply: { type: 'string', minLength: 1, maxLength: 512 },
          delayMs: { type: 'integer', minimum: 0, maximum: 600000 },
          bytesPerSecond: { type: 'integer', minimum: 1 },
          probability: { type: 'number', minimum: 0, maximum: 1 },
          times: { type: 'integer', minimum: 1 },
          match: { type: 'string', minLength: 1, maxLength: 256 },
        },
      },
    },
  },
} as const;
