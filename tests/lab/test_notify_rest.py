"""A schedule's notification fields through the REST API: kept and answered by `POST schedules` for a user who may
`write`, refused (403, nothing stored) for one who may only read; mistakes answer 400 naming the field."""

from __future__ import annotations

import pytest

from lab.conftest import two_step_pipeline
from lab.test_authorization import ReadOnly, config

pytestmark = pytest.mark.timeout(120)

SMTP = '[notify.smtp]\nhost = "127.0.0.1"\nport = 2525\nsecurity = "none"\nsender = "nbflow@example.com"\n'
BODY = {
    "name": "nightly",
    "cron": "0 17 * * 1-5",
    "tz": "Europe/Paris",
    "notify_on": ["failure", "success"],
    "deadline": "17:30",
    "notify_email": ["ops@example.com"],
}


async def test_a_schedule_keeps_its_notification_fields(jp_root_dir, api):
    two_step_pipeline(jp_root_dir)
    (jp_root_dir / "nbflow.toml").write_text(SMTP)
    status, added = await api("POST", "schedules", body=BODY)
    assert status == 201, added
    assert added["notify_on"] == ["failure", "success", "deadline"] and added["deadline"] == "17:30"
    assert added["notify_email"] == ["ops@example.com"]
    status, data = await api("POST", "schedules", body={**BODY, "name": "bad", "notify_email": ["not an address"]})
    assert status == 400 and "notify_email: 'not an address' is not an e-mail address" in data["message"], data
    status, data = await api("POST", "schedules", body={**BODY, "name": "bad", "deadline": "5pm"})
    assert status == 400 and "deadline '5pm'" in data["message"], data


class TestReadOnly:
    @pytest.fixture
    def jp_server_config(self):
        return config(ReadOnly)

    async def test_notification_fields_need_write(self, jp_root_dir, api):
        from nbflow.schedule import list_schedules

        two_step_pipeline(jp_root_dir)
        (jp_root_dir / "nbflow.toml").write_text(SMTP)
        status, data = await api("POST", "schedules", body=BODY)
        assert status == 403 and "not authorized" in data["message"], data
        assert list_schedules(jp_root_dir) == []
