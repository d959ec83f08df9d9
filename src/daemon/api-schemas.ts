/**
 * JSON schemas the routes share. Every object schema is closed by the route rules
 * (api-access.ts), so an unknown field is refused without each route saying so.
 */

/** `:name` of a domain, network, pool or migration. */
export const NAME_PARAM = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

/** A body that is one XML document. */
export const XML_BODY = { type: 'object', required: ['xml'], properties: { xml: { type: 'string' } } } as const;
