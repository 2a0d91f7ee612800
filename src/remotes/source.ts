/**
 * Distribution-source labels (containerd.io/distribution.source.<host> =
 * comma-joined repos): where a blob can be fetched from, set at fetch and
 * read at push to try cross-repository mounts.
 */
export const LabelDistributionSource = 'containerd.io/distribution.source';

/** `containerd.io/distribution.source.<hostname>`: the port is dropped, as url.Hostname() does. */
export function distributionSourceLabelKey(host: string): string {
  return `${LabelDistributionSource}.${hostnameOf(host)}`;
}

function hostnameOf(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(1, end) : host;
  }
  const i = host.indexOf(':');
  return i >= 0 && host.indexOf(':', i + 1) < 0 ? host.slice(0, i) : host;
}

/** Adds repo to a comma-separated source list: sorted, without duplicates or empties. */
export function appendDistributionSource(original: string | undefined, repo: string): string {
  const repos = original ? original.split(',') : [];
  repos.push(repo);
  return [...new Set(repos.filter((r) => r !== ''))].sort().join(',');
}
