import type { ConfigIssue } from '../lib/errors.js';
import { formatIssue } from '../lib/errors.js';

/**
 * GitHub Actions workflow commands for bad input: `::error file=F,line=L,title=…::message`,
 * so each problem is shown on the line of the inventory or playbook in the pull request.
 * https://docs.github.com/actions/reference/workflow-commands-for-github-actions
 */
export function githubAnnotations(issues: ConfigIssue[]): string[] {
  return issues.map((i) => {
    const props = [
      ...(i.file && i.file !== 'command line' && !i.file.startsWith('-') ? [`file=${prop(i.file)}`] : []),
      ...(i.line ? [`line=${i.line}`] : []),
      `title=${prop(`pgtls: bad input${i.field ? ` (${i.field})` : ''}`)}`,
    ];
    return `::error ${props.join(',')}::${data(i.file === 'command line' || !i.line ? formatIssue(i) : i.message)}`;
  });
}

export function underGithubActions(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.GITHUB_ACTIONS === 'true';
}

// Escaping rules of the workflow command format (toolkit/core's command.ts).
function data(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
function prop(s: string): string {
  return data(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}
