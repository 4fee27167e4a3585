import { redactUrl, redactUrls } from './redact.js';

describe('redact', () => {
  test.each([
    ['http://u:p@host/x', 'http://host/x'],
    ['https://u:p@ss@host:8443/x?y', 'https://host:8443/x?y'],
    ['https://u:pa]ss@host/', 'https://host/'],
    ['https://host/x@y', 'https://host/x@y'], // an @ in the path is no user-info
    ['file:///srv/repo', 'file:///srv/repo'],
  ])('redactUrl(%s)', (url, clean) => {
    expect(redactUrl(url)).toBe(clean);
  });

  test('every URL of a message, whatever quotes it', () => {
    expect(redactUrls('Curl error (22): for http://u:p@ss@a/x [401] and "https://v:q@b/y" or \'ftp://w:r@c/\''))
      .toBe('Curl error (22): for http://a/x [401] and "https://b/y" or \'ftp://c/\'');
  });
});
