// Credentials never leave the process: every URL we print or write goes through here first.
// User-info runs to the last @ before the path, as URL parsers read it: a password may hold an @.

/** A URL with its user-info (user:password@) removed. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1');
}

/** Every URL in a text with its user-info removed (dnf's and librepo's messages quote URLs). */
export function redactUrls(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s'"]*@/gi, '$1');
}
