/**
 * Secret scrubbing for any text that leaves jetvault (error messages, log lines): signed-URL parameters,
 * connection-string keys, credential-looking query values, and the values of the credential environment
 * variables the stores read. One place, applied by describeError() and by the CLI's log stream.
 */

/** Environment variables whose values are secrets wherever they show up. */
export const SECRET_ENV_VARS = [
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AZURE_STORAGE_CONNECTION_STRING',
  'AZURE_STORAGE_KEY',
  'AZURE_STORAGE_SAS_TOKEN',
  'AZURE_CLIENT_SECRET',
  'NATS_PASSWORD',
  'NATS_TOKEN',
] as const;

const PATTERNS: Array<[RegExp, string]> = [
  // SAS and presigned URLs
  [/([?&;])(sig|skoid|sktid|sks)=[^&\s"';]*/gi, '$1$2=***'],
  [/(X-Amz-(?:Signature|Credential|Security-Token))=[^&\s"';]*/gi, '$1=***'],
  // Connection strings
  [/(AccountKey|SharedAccessSignature|SharedAccessKey)=[^;\s"']*/gi, '$1=***'],
  // user:password@ in URLs
  [/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s:@"']+:[^/\s@"']+@/gi, '$1***@'],
  // Authorization headers
  [/(Authorization["']?\s*[:=]\s*["']?)(?:Bearer |SharedKey |AWS4-HMAC-SHA256 )?[^\s"',]+/gi, '$1***'],
];

/** Returns `text` with every secret we can recognise replaced by `***`. */
export function redactSecrets(text: string, env: NodeJS.ProcessEnv = process.env): string {
  let out = text;
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  for (const name of SECRET_ENV_VARS) {
    const value = env[name];
    // Short values would match innocent text; real secrets are long.
    if (value && value.length >= 8) out = out.split(value).join('***');
  }
  // The key inside a connection string is a secret on its own too.
  const connection = env.AZURE_STORAGE_CONNECTION_STRING;
  const key = connection ? /AccountKey=([^;]+)/i.exec(connection)?.[1] : undefined;
  if (key && key.length >= 8) out = out.split(key).join('***');
  return out;
}
