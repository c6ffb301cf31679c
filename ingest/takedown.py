"""Taking posts down: out of the index and out of everything jointspace derived from them.

A team that ingests a stream must honour deletions (a user removed the post, a legal request). The
index is not the only copy: workers keep each post's image features for `train --from-index` and
`reindex` (backends/kept_features.py), saved searches record their matches with a copy of the post
(and may owe it a webhook), and a post may wait in the dead letters. `jointspace delete`
and `DELETE /posts/{id}` both go through `take_down`, so neither forgets one of them. The pictures
themselves are the user's files, not jointspace's, and are left where they are.

A takedown is recorded (protocols.TakedownRegister) before anything is removed, and the workers
never write a recorded post: a batch already queued, a stream that sends the post again, `dead-letters
retry` and `restore` of an older backup all leave it out. `jointspace takedowns lift` allows it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from jointspace.backends.kept_features import forget_kept
from jointspace.workers.dead_letters import DeadLetterStore

from jointspace.alerts.store import AlertStore
from jointspace.protocols import SearchBackend, TakedownRegister
from jointspace.settings import Settings


@dataclass
class TakedownReport:
    deleted: list[str] = field(default_factory=list)  # were in the index, are not now
    missing: list[str] = field(default_factory=list)  # were not in the index
    features_removed: int = 0
    dead_letters_removed: int = 0
    alert_matches_removed: int = 0
    recorded: int = 0  # ids recorded in the register (every id given): never indexed again until lifted

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def take_down(
    settings: Settings,
    backend: SearchBackend | None,
    dead_letters: DeadLetterStore | None,
    alerts: AlertStore | None,
    register: TakedownRegister,
    post_ids: Sequence[str],
) -> TakedownReport:
    """Records the takedown, then deletes each post from the index, its kept features, its alert
    matches and its dead letter; searchable at once (the backend is refreshed). An id given twice
    counts once. Ids the index lacks are recorded too: the post may still be on its way (`backend`
    None: there is no index yet)."""
    ids = list(dict.fromkeys(post_ids))
    # First: a worker that writes one of these posts after this looks again once it has written
    # (workers/batch_indexing.py), so whichever of the two runs last removes it.
    register.record(ids)
    report = TakedownReport(recorded=len(ids))
    for post_id in ids:
        (report.deleted if backend is not None and backend.delete(post_id) else report.missing).append(post_id)
    if backend is not None and report.deleted:
        backend.refresh()
    # Also for ids the index lacks: features or a dead letter may outlive a post deleted before this.
    report.features_removed = forget_kept(settings.home, ids)
    if dead_letters is not None:
        report.dead_letters_removed = dead_letters.remove(ids)
    if alerts is not None:
        report.alert_matches_removed = alerts.forget_posts(ids)
    return report
