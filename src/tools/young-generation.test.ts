import { relaunchArgv, YOUNG_GENERATION_FLAG, type NodeProcess } from './young-generation.js';

const execve = (() => {
  throw new Error('not called by relaunchArgv');
}) as NonNullable<NodeProcess['execve']>;
const node = (over: Partial<NodeProcess> = {}): NodeProcess => ({
  execPath: '/usr/bin/node',
  execArgv: [],
  argv: ['/usr/bin/node', '/action/dist/action.js'],
  env: {},
  execve,
  ...over,
});

describe('relaunchArgv', () => {
  test('the same script and arguments, the flag after the node options already given', () => {
    expect(relaunchArgv(node({ execArgv: ['--enable-source-maps'], argv: ['/usr/bin/node', '/x/dist/cli.js', 'compose', '--json'] }))).toEqual([
      '/usr/bin/node', '--enable-source-maps', YOUNG_GENERATION_FLAG, '/x/dist/cli.js', 'compose', '--json',
    ]);
  });

  test('not where Node has no process.execve (before 22.15), nor once started with the flag', () => {
    expect(relaunchArgv(node({ execve: undefined }))).toBeUndefined();
    const started = relaunchArgv(node())!;
    expect(relaunchArgv(node({ execArgv: started.slice(1, -1) }))).toBeUndefined();
  });

  test("a size the user chose, on the command line or in NODE_OPTIONS, is kept", () => {
    expect(relaunchArgv(node({ execArgv: ['--max-semi-space-size=16'] }))).toBeUndefined();
    expect(relaunchArgv(node({ execArgv: ['--max_semi_space_size', '8'] }))).toBeUndefined();
    expect(relaunchArgv(node({ env: { NODE_OPTIONS: '--no-warnings --max-semi-space-size=64' } }))).toBeUndefined();
    expect(relaunchArgv(node({ env: { NODE_OPTIONS: '--max-old-space-size=512' } }))).toBeDefined();
  });
});
