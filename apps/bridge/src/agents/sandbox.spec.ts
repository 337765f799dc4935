import { Bubblewrap, agentDirs } from './sandbox';

describe('Bubblewrap.wrap', () => {
  const dirs = agentDirs('/var/tmp/tessera-bridge/s1');
  const user = { name: 'tessera-agent', uid: 990, gid: 990 };
  const launch = new Bubblewrap('/usr/bin/bwrap', user).wrap(process.execPath, [__filename, '--port', '4096'], { OPENCODE_SERVER_PASSWORD: 'pw' }, dirs);
  const pairs = (flag: string) => launch.args.flatMap((a, i) => (a === flag ? [[launch.args[i + 1], launch.args[i + 2]]] : []));

  it('runs bwrap as the agent user, with only the environment it is given', () => {
    expect(launch).toMatchObject({ command: '/usr/bin/bwrap', uid: 990, gid: 990, cwd: dirs.root });
    expect(launch.env).toEqual({ PATH: '/usr/local/bin:/usr/bin:/bin', OPENCODE_SERVER_PASSWORD: 'pw', HOME: '/home/agent', USER: 'tessera-agent' });
  });

  it('unshares every namespace but the network, and forbids nested user namespaces', () => {
    for (const flag of ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--disable-userns']) expect(launch.args).toContain(flag);
    expect(launch.args).not.toContain('--share-net');
    expect(launch.args).not.toContain('--unshare-net');
  });

  it('binds only the workspace and home read-write, and the program and its script read-only under /opt/agent', () => {
    expect(pairs('--bind')).toEqual([
      [dirs.workspace, '/workspace'],
      [dirs.home, '/home/agent'],
    ]);
    const ro = pairs('--ro-bind');
    expect(ro).toContainEqual([__filename, '/opt/agent/1-sandbox.spec.ts']);
    // Nothing of the checkout is bound where it lives on the host.
    expect(ro.filter(([, to]) => to.startsWith(process.cwd()))).toEqual([]);
    expect(ro.filter(([from]) => from.startsWith('/etc/')).map(([from]) => from)).not.toContain('/etc/shadow');
    const cmd = launch.args.slice(launch.args.indexOf('--') + 1);
    expect(cmd.slice(1)).toEqual(['/opt/agent/1-sandbox.spec.ts', '--port', '4096']);
  });
});
