"""Export corrected items as a training dataset (face/<label>/*.png, voice/<label>/*.wav,
manifest.csv): ``--pool`` the shared pool (every account that has sharing on now), ``--user`` one
account's own corrections. OUT is a folder, or a file ending in .zip."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from recognition.corrections import dataset as correction_dataset
from recognition.corrections import selectors as correction_selectors


class Command(BaseCommand):
    help = "Export corrected items (the shared pool, or one user's) as a training dataset."

    def add_arguments(self, parser) -> None:
        parser.add_argument("out", type=Path, help="folder to write, or a .zip file")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--pool", action="store_true", help="every account that shares its corrections")
        which.add_argument("--user", help="one account's corrections (username)")

    def handle(self, *args, out: Path, pool: bool, user: str | None, **options) -> None:
        if pool:
            chosen = correction_dataset.pool_corrections()
        else:
            account = get_user_model().objects.filter(username=user).first()
            if account is None:
                raise CommandError(f"no user {user!r}")
            chosen = list(correction_selectors.corrections_for(account))
        if out.suffix.lower() == ".zip":
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "wb") as fh:
                summary = correction_dataset.write_dataset(chosen, fh)
        else:
            summary = correction_dataset.write_dataset(chosen, out)
        self.stdout.write(
            f"{summary['files']} files ({summary['skipped']} items without media skipped) -> {out}; "
            f"manifest sha256 {summary['manifest_sha256']}; counts {summary['counts']}"
        )
