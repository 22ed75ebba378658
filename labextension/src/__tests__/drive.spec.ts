import { ServerConnection } from '@jupyterlab/services';

import { RUNS_DRIVE, RunsDrive, runNotebookPath } from '../drive';
import { IRunNotebook } from '../protocol';
import { run } from './fixtures';

describe('runNotebookPath', () => {
  it('opens the file itself when it lies under the server root', () => {
    const r = {
      ...run('succeeded', '2026-12-07T09:00:00Z'),
      output_path: '/home/u/work/out/daily-1.ipynb',
      output_lab_path: 'out/daily-1.ipynb'
    };
    expect(runNotebookPath(r)).toBe('out/daily-1.ipynb');
  });

  it('opens it from the runs drive when it lies outside', () => {
    const r = {
      ...run('failed', '2026-12-07T09:00:00Z'),
      id: 'abc-1f',
      output_path:
        '/home/u/.local/share/jupyter/nbsched/runs/daily/daily-1.ipynb',
      output_lab_path: null
    };
    expect(runNotebookPath(r)).toBe(`${RUNS_DRIVE}:abc-1f/daily-1.ipynb`);
  });

  it('has nothing to open for runs without a notebook', () => {
    expect(runNotebookPath(run('succeeded', '2026-12-07T09:00:00Z'))).toBe(
      null
    );
    const text = { ...run('succeeded', 'x'), output_path: '/tmp/out.txt' };
    expect(runNotebookPath(text)).toBe(null);
  });
});

describe('RunsDrive', () => {
  const notebook: IRunNotebook = {
    name: 'daily-1.ipynb',
    run_id: 'abc-1f',
    job_name: 'daily',
    last_modified: '2026-12-07T09:00:01+00:00',
    content: { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] }
  };
  const asked: string[] = [];
  const drive = new RunsDrive({
    settings: ServerConnection.makeSettings({ baseUrl: 'http://x/' }),
    runNotebook: async (id: string) => {
      asked.push(id);
      return notebook;
    }
  });

  it('serves a run notebook read-only, by the run id in its path', async () => {
    const model = await drive.get('abc-1f/daily-1.ipynb', { content: true });
    expect(asked).toEqual(['abc-1f']);
    expect(model.type).toBe('notebook');
    expect(model.writable).toBe(false);
    expect(model.content).toEqual(notebook.content);
    expect(model.last_modified).toBe(notebook.last_modified);
  });

  it('refuses every change', async () => {
    await expect(drive.save('abc-1f/daily-1.ipynb', {})).rejects.toThrow(
      'read-only'
    );
    await expect(drive.delete('abc-1f/daily-1.ipynb')).rejects.toThrow(
      'read-only'
    );
    expect(await drive.listCheckpoints('abc-1f/daily-1.ipynb')).toEqual([]);
  });
});
