"""The operator's look at the queue A and B share, run as a script with their environment.

    python queue_probe.py look LOGIN         JSON: LOGIN's mails, the tasks not yet run, the workers seen
    python queue_probe.py wake TIMES ID ...  put TIMES more deliver_mail tasks on the queue for each mail

`wake` makes what a crash and `recover_stalled`, or a task delivered twice, would make: more than
one wake-up for one mail. The test suite's own settings point elsewhere, so this runs apart.
"""

from __future__ import annotations

import json
import sys

from twostep import bootstrap


def look(login: str) -> dict:
    from django_tasks_db.models import DBTaskResult

    from twostep.models import Mail
    from twostep.services.outbox import deliver_mail

    mails = Mail.objects.filter(user__login=login).order_by("pk")
    deliveries = DBTaskResult.objects.filter(task_path=deliver_mail.module_path)
    return {
        "mails": [{"id": m.pk, "kind": m.kind, "status": m.status} for m in mails],
        "waiting_tasks": DBTaskResult.objects.filter(status__in=["READY", "RUNNING"]).count(),
        "workers": sorted({w for ids in deliveries.values_list("worker_ids", flat=True) for w in ids}),
    }


def wake(times: int, mail_ids: list[int]) -> None:
    from django.db import transaction

    from twostep.services.outbox import deliver_mail

    with transaction.atomic():  # all at once, so both workers find them waiting together
        for _ in range(times):
            for mail_id in mail_ids:
                deliver_mail.enqueue(mail_id)


if __name__ == "__main__":
    bootstrap.load_settings()
    command, *args = sys.argv[1:]
    if command == "look":
        print(json.dumps(look(args[0])))
    elif command == "wake":
        wake(int(args[0]), [int(a) for a in args[1:]])
    else:
        sys.exit(f"unknown command {command!r}")
