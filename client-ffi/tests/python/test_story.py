"""The whole Amparo story driven from Python through the generated UniFFI
bindings (the same library and metadata the Kotlin and Swift apps use),
against a real amparo-relay process on loopback.

Run by client-ffi/bindings.sh test (which builds the library, generates the
bindings into client-ffi/out/python and sets AMPARO_RELAY_BIN).
"""

import hashlib
import hmac
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

import amparo_ffi as amparo

REPO = Path(__file__).resolve().parents[3]
PIN = "2468"
FAST = amparo.KdfStrength.DANGEROUSLY_FAST_FOR_TESTS


def relay_binary() -> str:
    return os.environ.get("AMPARO_RELAY_BIN") or str(REPO / "target" / "debug" / "amparo-relay")


class RelayProcess:
    """An amparo-relay process on a free loopback port, its log captured."""

    def __init__(self, data_dir: Path, coordinator_key: str, extra_args=()):
        self.proc = subprocess.Popen(
            [
                relay_binary(),
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                str(data_dir),
                f"--coordinator-key={coordinator_key}",
                "--log",
                "info",
                *extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AMPARO_CONFIG")},
        )
        self.log = []
        started = threading.Event()
        self.url = self.receipt_key = None

        def read():
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line)
                if "listening on http://" in line and not started.is_set():
                    addr = line.split("listening on http://", 1)[1].split(",", 1)[0]
                    self.url = f"http://{addr}"
                    self.receipt_key = line.rsplit("receipt key ", 1)[1].strip()
                    started.set()

        threading.Thread(target=read, daemon=True).start()
        if not started.wait(60):
            self.stop()
            raise RuntimeError("the relay did not start:\n" + "".join(self.log))

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Progress(amparo.SyncListener):
    """Records every progress step the core reports (a progress bar would draw them)."""

    def __init__(self):
        self.steps = []

    def on_progress(self, progress):
        self.steps.append(progress)


@pytest.fixture
def world(tmp_path):
    coordinator = amparo.Coordinator.generate()
    relay_proc = RelayProcess(tmp_path / "relay", coordinator.public_key())
    try:
        trusted = amparo.TrustedKeys(
            coordinator_key=coordinator.public_key(),
            relay_receipt_keys=[relay_proc.receipt_key],
        )
        relay = amparo.Relay(amparo.RelaySettings(url=relay_proc.url, timeout_seconds=30))
        yield coordinator, relay, trusted, tmp_path
    finally:
        relay_proc.stop()


def focal_point_entry(fp_id: str, keys: amparo.FocalKeys) -> amparo.FocalPoint:
    name = amparo.LocalizedText(es="Defensoría de Ucayali", pt="Defensoria de Ucayali", en="Ucayali Ombudsman")
    return amparo.FocalPoint(
        id=fp_id,
        name=name,
        organization="Defensoría del Pueblo",
        regions=["PE-UCA"],
        categories=[amparo.Need.LEGAL_ADVICE, amparo.Need.PROTECTION_SHELTER],
        languages=[amparo.Language.ES],
        keys=keys,
        valid_from=0,
        valid_until=2**62,
        reads=["deflate_d1"],
    )


def photo_with_gps() -> tuple[bytes, bytes]:
    """A JPEG whose EXIF segment names where it was taken; returns it and
    the same JPEG without that segment (what must reach the focal point)."""
    exif = b"Exif\x00\x00GPS -8.3791,-74.5539 Pucallpa"
    app1 = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    scan = b"\xff\xda" + bytes((i * 2654435761 >> 24) & 0xFF for i in range(100_000)) + b"\xff\xd9"
    return b"\xff\xd8" + app1 + scan, b"\xff\xd8" + scan


def test_report_is_sent_answered_and_read_then_wiped(world):
    coordinator, relay, trusted, tmp = world

    # The focal point makes its keys; the coordinator lists it and publishes the directory.
    focal = amparo.Profile.create(str(tmp / "focal"), PIN, FAST, trusted)
    keys = focal.create_focal_identity()
    assert keys.mailbox == focal.focal_keys().mailbox
    signed = coordinator.sign_directory(
        1,
        [focal_point_entry("pe-uca-defensoria", keys)],
        [],
        [amparo.RelayEntry(name="test relay", url=None, receipt_key=trusted.relay_receipt_keys[0])],
    )
    relay.publish_directory(signed)

    # The survivor's phone gets the directory and looks for help in her region.
    survivor = amparo.Profile.create(str(tmp / "survivor"), PIN, FAST, trusted)
    assert survivor.refresh_directory(relay) == 1
    found = survivor.focal_points(amparo.FocalPointQuery(region="PE-UCA", need=amparo.Need.LEGAL_ADVICE))
    assert [f.id for f in found] == ["pe-uca-defensoria"]
    suggestion = survivor.suggest_focal_point(amparo.FocalPointQuery(region="PE-UCA", language=amparo.Language.PT))
    assert suggestion is not None and suggestion.id == "pe-uca-defensoria"

    # She writes a report offline, with a photo, and corrects it.
    form = amparo.DraftForm(
        violence=[amparo.ViolenceKind.EXTORTION, amparo.ViolenceKind.THREATS],
        aggressors=[amparo.AggressorKind.POLICE_OR_SECURITY],
        needs=[amparo.Need.LEGAL_ADVICE],
        country="PE",
        region="PE-UCA",
        incident_date=amparo.IncidentDate(year=2026, month=11, day=None, approximate=True),
        language=amparo.Language.ES,
        text="Dos agentes me pidieron dinero.",
        place_setting=amparo.PlaceSetting.BORDER,
        age_band=amparo.AgeBand.ADULT,
        reported_elsewhere=False,
        statistics_consent=True,
    )
    assert "sin tu nombre" in amparo.statistics_consent_question(amparo.Language.ES)
    draft_id = survivor.create_draft(form)
    form.text = "Dos agentes me pidieron dinero para no llevarme detenida."
    survivor.update_draft(draft_id, form)
    photo, photo_clean = photo_with_gps()
    survivor.add_attachment(draft_id, amparo.AttachmentKind.PHOTO, "image/jpeg", photo)
    wrong = survivor.add_attachment(draft_id, amparo.AttachmentKind.AUDIO, "audio/ogg", b"not this one")
    survivor.remove_attachment(draft_id, wrong)
    [preview] = survivor.draft_attachments(draft_id)
    assert preview.data == photo_clean, "the photo's location is gone before anything is sent"
    [draft] = survivor.drafts()
    assert draft.id == draft_id and draft.form.text == form.text and len(draft.attachments) == 1

    report_id = survivor.send_draft(draft_id, "pe-uca-defensoria", True)
    assert survivor.drafts() == []
    queued = survivor.outbox_len()
    assert queued >= 3, "a report and a 100 KB photo in 64 KiB pieces"
    assert survivor.sent_copy(report_id).text == form.text

    progress = Progress()
    summary = survivor.sync(relay, progress)
    assert (summary.delivered, summary.refused, summary.new_messages) == (queued, 0, 0)
    # A quiet relay asks no admission: nothing paid, nothing waits for it.
    assert (summary.tokens_used, summary.admission_work, summary.max_effort, summary.waiting_for_relay) == (0, 0, 0, 0)
    assert survivor.outbox_len() == 0
    uploads = [p for p in progress.steps if p.is_upload()]
    assert uploads[0].done == 0 and uploads[-1].done == uploads[-1].total == queued
    assert any(p.is_replies() for p in progress.steps)
    [sent] = survivor.sent_reports()
    assert (sent.id, sent.focal_point, sent.delivered, sent.pending) == (report_id, "pe-uca-defensoria", queued, 0)

    # The focal point fetches, decrypts and reads the case, photo included (without its GPS).
    fetched = focal.focal_sync(relay, Progress()).fetched
    assert (fetched.new_cases, fetched.rejected) == (1, 0)
    [case_summary] = focal.cases(amparo.CaseFilter(need=amparo.Need.LEGAL_ADVICE, region="PE-UCA"))
    assert case_summary.id == report_id and case_summary.status == amparo.CaseStatus.RECEIVED
    assert focal.cases(amparo.CaseFilter(need=amparo.Need.CHILDREN)) == []
    case = focal.get_case(report_id)
    assert case.form.text == form.text
    assert case.form.aggressors == [amparo.AggressorKind.POLICE_OR_SECURITY]
    [attachment] = case.attachments
    assert attachment.kind == amparo.AttachmentKind.PHOTO and attachment.mime == "image/jpeg"
    assert attachment.data == photo_clean
    assert b"GPS" not in attachment.data
    # New until read; an internal note stays with the office.
    assert case_summary.unread and case_summary.notes == 0
    focal.mark_case_read(report_id)
    focal.add_case_note(report_id, "Llamar a la abogada de turno.")
    focal.set_case_stage(report_id, amparo.CaseStage.ASSESSMENT)
    [case_summary] = focal.cases(amparo.CaseFilter())
    assert not case_summary.unread and case_summary.notes == 1
    assert case_summary.stage == amparo.CaseStage.ASSESSMENT
    assert [n.text for n in focal.get_case(report_id).notes] == ["Llamar a la abogada de turno."]
    # The office classifies it for statistics she agreed to (internal).
    assert case_summary.statistics_consent and case_summary.gbv_type is None
    assert case.form.place_setting == amparo.PlaceSetting.BORDER and case.form.age_band == amparo.AgeBand.ADULT
    focal.classify_case(report_id, amparo.GbvType.PSYCHOLOGICAL_ABUSE, [amparo.GbvContext.SEXUAL_EXPLOITATION])
    [case_summary] = focal.cases(amparo.CaseFilter())
    assert case_summary.gbv_type == amparo.GbvType.PSYCHOLOGICAL_ABUSE
    assert case_summary.context == [amparo.GbvContext.SEXUAL_EXPLOITATION]

    # It answers and moves the case on (the note is not sent: two envelopes go).
    focal.reply_to_case(report_id, "Recibimos su reporte. Una defensora le escribirá por aquí.")
    focal.set_case_status(report_id, amparo.CaseStatus.IN_PROGRESS, None)
    assert focal.focal_sync(relay, None).sent.delivered == 2

    # The survivor reads the answer.
    summary = survivor.sync(relay, None)
    assert summary.new_messages == 2
    texts = [m.text for m in survivor.messages()]
    assert "Recibimos su reporte. Una defensora le escribirá por aquí." in texts
    [sent] = survivor.sent_reports()
    assert sent.status == amparo.CaseStatus.IN_PROGRESS and sent.unread == 2
    for m in survivor.messages():
        survivor.mark_read(m.id)
    assert survivor.sent_reports()[0].unread == 0

    # She answers back on the same channel; the focal point files it on the case.
    survivor.reply_on_report(report_id, "Gracias. Puedo hablar el martes.")
    assert survivor.sync(relay, None).delivered == 1
    assert focal.focal_sync(relay, None).fetched.messages == 1
    assert focal.get_case(report_id).messages == ["Gracias. Puedo hablar el martes."]

    # Wipe: the profile is gone, from this handle and from the disk.
    folder = str(tmp / "survivor")
    survivor.wipe()
    assert not amparo.profile_exists(folder)
    with pytest.raises(amparo.AmparoError.ProfileClosed):
        survivor.sent_reports()
    with pytest.raises(amparo.AmparoError.NoProfile):
        amparo.Profile.open(folder, PIN, trusted)


def test_wrong_pin_and_bad_input_give_the_flat_error(world):
    _, _, trusted, tmp = world
    folder = str(tmp / "p")
    profile = amparo.Profile.create(folder, PIN, FAST, trusted)
    with pytest.raises(amparo.AmparoError.ProfileExists):
        amparo.Profile.create(folder, PIN, FAST, trusted)
    profile.lock()
    with pytest.raises(amparo.AmparoError.ProfileClosed):
        profile.drafts()

    with pytest.raises(amparo.AmparoError.WrongPin) as wrong:
        amparo.Profile.open(folder, "1357", trusted)
    assert str(wrong.value) == "the PIN is not correct"

    profile = amparo.Profile.open(folder, PIN, trusted)
    with pytest.raises(amparo.AmparoError.Invalid):
        profile.draft("not an id")
    with pytest.raises(amparo.AmparoError.NotFound):
        profile.draft("AAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(amparo.AmparoError.Invalid) as too_long:
        profile.create_draft(amparo.DraftForm(text="x" * 20_000))
    assert "text" in str(too_long.value)
    with pytest.raises(amparo.AmparoError.Invalid):
        amparo.Profile.open(folder, PIN, amparo.TrustedKeys(coordinator_key="short", relay_receipt_keys=[]))
    # Admission tokens handed on as text: a broken text is refused, nothing kept.
    assert profile.tokens_held() == 0
    for text in ("hello", "amparo-tokens:xyz", "amparo-tokens:" + "A" * 10):
        with pytest.raises(amparo.AmparoError.Invalid):
            profile.import_tokens(text)
    assert profile.tokens_held() == 0
    with pytest.raises(amparo.AmparoError.Network):
        dead = amparo.Relay(amparo.RelaySettings(url="http://127.0.0.1:9", timeout_seconds=5))
        profile.sync(dead, None)


def test_duress_pin_opens_a_decoy_and_can_destroy_the_real_profile(world):
    _, _, trusted, tmp = world
    folder = str(tmp / "p")
    real = amparo.Profile.create(folder, PIN, FAST, trusted)
    real.create_draft(amparo.DraftForm(text="lo que pasó de verdad"))
    real.set_duress_pin("1111", True)
    real.lock()

    decoy = amparo.Profile.open(folder, "1111", trusted)
    assert decoy.drafts() == [], "the decoy looks like a new, empty profile"
    decoy.lock()
    with pytest.raises(amparo.AmparoError.WrongPin):
        amparo.Profile.open(folder, PIN, trusted)


def test_the_decoy_syncs_against_the_relay_like_a_quiet_profile(world):
    coordinator, relay, trusted, tmp = world
    focal = amparo.Profile.create(str(tmp / "focal"), PIN, FAST, trusted)
    keys = focal.create_focal_identity()
    relays = [amparo.RelayEntry(name="test relay", url=None, receipt_key=trusted.relay_receipt_keys[0])]
    first = focal_point_entry("pe-uca-defensoria", keys)
    relay.publish_directory(coordinator.sign_directory(1, [first], [], relays))

    folder = str(tmp / "p")
    real = amparo.Profile.create(folder, PIN, FAST, trusted)
    assert real.refresh_directory(relay) == 1
    real.create_draft(amparo.DraftForm(text="lo que pasó de verdad"))
    real.set_duress_pin("1111", False)
    # Harmless content she prepares for it, from the real profile.
    real.decoy_add_draft(amparo.DraftForm(text="lista: pan, saldo para el celular"))
    minor = amparo.DraftForm(
        needs=[amparo.Need.LEGAL_ADVICE],
        country="PE",
        region="PE-UCA",
        language=amparo.Language.ES,
        text="Me robaron la billetera en el mercado.",
    )
    old = real.decoy_add_delivered_report(minor, None, 1_790_000_000)
    assert [r.id for r in real.decoy_sent_reports()] == [old]
    real.lock()

    # The network moves on while the phone sits in a drawer.
    other = amparo.Profile.create(str(tmp / "focal2"), PIN, FAST, trusted)
    second = focal_point_entry("pe-uca-cem", other.create_focal_identity())
    relay.publish_directory(coordinator.sign_directory(2, [first, second], [], relays))

    decoy = amparo.Profile.open(folder, "1111", trusted)
    [draft] = decoy.drafts()
    assert draft.form.text.startswith("lista")
    assert [r.id for r in decoy.sent_reports()] == [old]
    summary = decoy.sync(relay, None)
    assert (summary.delivered, summary.refused, summary.postponed) == (0, 0, 0)
    found = decoy.focal_points(amparo.FocalPointQuery(region="PE-UCA"))
    assert sorted(f.id for f in found) == ["pe-uca-cem", "pe-uca-defensoria"], "it refreshed its directory"
    # From inside it is a profile without a duress PIN: removing one does nothing ...
    decoy.clear_duress_pin()
    decoy.lock()
    real = amparo.Profile.open(folder, PIN, trusted)
    assert len(real.drafts()) == 1
    real.lock()

    # ... and made to set one, it works, at the cost of the profile it hid.
    decoy = amparo.Profile.open(folder, "1111", trusted)
    decoy.set_duress_pin("3333", False)
    decoy.lock()
    with pytest.raises(amparo.AmparoError.WrongPin):
        amparo.Profile.open(folder, PIN, trusted)
    assert amparo.Profile.open(folder, "3333", trusted).drafts() == []


def test_a_facilitator_carries_reports_and_brings_receipts_back(world):
    coordinator, relay, trusted, tmp = world
    focal = amparo.Profile.create(str(tmp / "focal"), PIN, FAST, trusted)
    signed = coordinator.sign_directory(1, [focal_point_entry("pe-uca-casa", focal.create_focal_identity())], [], [])

    # The survivor has no signal: she gets the directory from a file and writes her report.
    survivor = amparo.Profile.create(str(tmp / "survivor"), PIN, FAST, trusted)
    assert survivor.import_directory(signed) == 1
    draft = survivor.create_draft(amparo.DraftForm(needs=[amparo.Need.PROTECTION_SHELTER], text="Necesito un lugar seguro."))
    report_id = survivor.send_draft(draft, "pe-uca-casa", False)
    queued = survivor.outbox_len()

    # She hands her outbox to a facilitator, whose phone cannot read it and keeps each envelope once.
    bundle = survivor.export_outbox_bundle()
    facilitator = amparo.Profile.create(str(tmp / "facilitator"), PIN, FAST, trusted)
    imported = facilitator.import_bundle(bundle)
    assert (imported.envelopes, imported.damaged) == (queued, None)
    assert facilitator.import_bundle(bundle).duplicates == queued
    assert facilitator.carrying().waiting == queued

    # Where there is signal, the facilitator uploads and carries the receipts back.
    up = facilitator.upload_carried(relay)
    assert (up.delivered, up.postponed, up.refused, up.retry_after_secs) == (queued, 0, 0, None)
    assert facilitator.carrying().delivered == queued
    # She also gets the newer directory the facilitator brought from town.
    newer = coordinator.sign_directory(2, [focal_point_entry("pe-uca-casa", focal.focal_keys())], [], [])
    assert facilitator.import_directory(newer) == 2
    back = survivor.import_bundle(facilitator.export_return_bundle())
    assert (back.receipts_accepted, back.directory) == (queued, 2)
    assert survivor.outbox_len() == 0
    assert survivor.sent_reports()[0].delivered == queued

    # The report is at the focal point, which answers.
    assert focal.focal_sync(relay, None).fetched.new_cases == 1
    assert [c.id for c in focal.cases(amparo.CaseFilter())] == [report_id]
    focal.reply_to_case(report_id, "Recibimos tu mensaje. Hay un lugar para ti.")
    focal.focal_sync(relay, None)

    # The facilitator brings the sealed answer back with the grant from the bundle.
    assert imported.grants == 1 and facilitator.carrying().grants == 1
    assert facilitator.fetch_granted_replies(relay) == 1
    assert facilitator.fetch_granted_replies(relay) == 0
    # Within a data budget, going on from where the last fetch stopped: nothing new, few bytes.
    got = facilitator.fetch_granted_replies_within(relay, 256 * 1024)
    assert (got.new, got.left, got.full) == (0, False, 0) and 0 < got.bytes < 4096
    assert facilitator.carrying().replies == 1
    back = survivor.import_bundle(facilitator.export_return_bundle())
    assert back.messages == 1
    assert [m.text for m in survivor.messages()] == ["Recibimos tu mensaje. Hay un lugar para ti."]
    assert survivor.import_bundle(facilitator.export_return_bundle()).messages == 0
    # Her own sync reads the same answer (already filed) and deletes it at the relay, within its budget.
    s = survivor.sync_within(relay, 128 * 1024, None)
    assert (s.new_messages, s.discarded, s.replies_left) == (0, 0, False) and s.reply_bytes <= 128 * 1024


def test_the_form_is_worded_in_spanish_portuguese_and_english():
    labels = {lang: amparo.need_label(amparo.Need.STI_HIV_PEP, lang) for lang in amparo.Language}
    assert len(set(labels.values())) == 3, labels
    assert amparo.language_label(amparo.Language.ES) == "Español"
    for kind in amparo.ViolenceKind:
        assert amparo.violence_label(kind, amparo.Language.PT)
    assert amparo.case_status_label(amparo.CaseStatus.IN_PROGRESS, amparo.Language.EN)


def test_one_profile_is_used_from_several_threads(world):
    """Apps call from background threads: a sync on one, drafts on others."""
    coordinator, relay, trusted, tmp = world
    focal = amparo.Profile.create(str(tmp / "focal"), PIN, FAST, trusted)
    relay.publish_directory(coordinator.sign_directory(1, [focal_point_entry("pe-uca-casa", focal.create_focal_identity())], [], []))
    survivor = amparo.Profile.create(str(tmp / "survivor"), PIN, FAST, trusted)
    survivor.refresh_directory(relay)
    for i in range(5):
        d = survivor.create_draft(amparo.DraftForm(text=f"reporte {i}"))
        survivor.add_attachment(d, amparo.AttachmentKind.AUDIO, "audio/ogg", bytes([i]) * 70_000)
        survivor.send_draft(d, "pe-uca-casa", False)
    queued = survivor.outbox_len()

    errors = []

    def guarded(f):
        def run():
            try:
                f()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        return run

    results = {}
    threads = [threading.Thread(target=guarded(lambda: results.setdefault("sync", survivor.sync(relay, Progress()))))]
    for t in range(3):
        threads.append(threading.Thread(target=guarded(lambda t=t: [survivor.create_draft(amparo.DraftForm(text=f"borrador {t}.{j}")) for j in range(10)])))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert results["sync"].delivered == queued
    assert len(survivor.drafts()) == 30
    assert focal.focal_sync(relay, None).fetched.new_cases == 5


# --- The seized phone: the device key, wrong PINs, wipe after N (issue 16) ---


class HmacDeviceKey(amparo.DeviceKey):
    """What a phone's Android Keystore or Secure Enclave does for the app:
    HMAC-SHA256 of the challenge under a key that stays put (here the test
    holds it; on a phone it never leaves the secure hardware)."""

    def __init__(self, key: bytes):
        self.key = key
        self.asked = 0

    def respond(self, challenge: bytes) -> bytes:
        self.asked += 1
        assert len(challenge) == 32
        return hmac.new(self.key, challenge, hashlib.sha256).digest()


class LockedKeyStore(amparo.DeviceKey):
    """A key store that refuses (locked, key deleted)."""

    def respond(self, challenge: bytes) -> bytes:
        raise amparo.DeviceKeyError.Failed(reason="the key store is locked")


class BrokenKeyStore(amparo.DeviceKey):
    """An implementation with a bug: throws something else, or answers short."""

    def __init__(self, short: bool):
        self.short = short

    def respond(self, challenge: bytes) -> bytes:
        if self.short:
            return b"\x00" * 16
        raise RuntimeError("bug in the app")


def trusted_keys() -> amparo.TrustedKeys:
    return amparo.TrustedKeys(coordinator_key=amparo.Coordinator.generate().public_key(), relay_receipt_keys=[])


def test_a_copied_profile_opens_only_with_its_own_device_key(tmp_path):
    trusted = trusted_keys()
    phone = HmacDeviceKey(os.urandom(32))
    folder = str(tmp_path / "phone")
    p = amparo.Profile.create_with_device(folder, PIN, FAST, trusted, phone)
    assert p.device_bound()
    p.create_draft(amparo.DraftForm(text="lo que pasó"))
    p.lock()
    status = amparo.unlock_status(folder)
    assert (status.device_bound, status.failed_attempts, status.wait_seconds) == (True, 0, 0)

    # The folder copied to another "phone" (a forensic image, a backup).
    copy = str(tmp_path / "seized")
    shutil.copytree(folder, copy)
    other = HmacDeviceKey(os.urandom(32))
    with pytest.raises(amparo.AmparoError.WrongPin):
        amparo.Profile.open_with_device(copy, PIN, trusted, other)
    assert other.asked == 1, "the right PIN, asked once of the wrong device"
    assert amparo.unlock_status(copy).failed_attempts == 1
    with pytest.raises(amparo.AmparoError.DeviceKeyNeeded):
        amparo.Profile.open(copy, PIN, trusted)
    with pytest.raises(amparo.AmparoError.DeviceKeyNeeded):
        amparo.Profile.open_with_device(copy, PIN, trusted, None)

    # On its own phone (its key) the copy and the original open, drafts and all.
    for f in (copy, folder):
        opened = amparo.Profile.open_with_device(f, PIN, trusted, phone)
        assert [d.form.text for d in opened.drafts()] == ["lo que pasó"]
        opened.lock()
    assert amparo.unlock_status(copy).failed_attempts == 0

    # A key store that fails is told as such and costs no attempt.
    with pytest.raises(amparo.AmparoError.DeviceKey) as locked:
        amparo.Profile.open_with_device(folder, PIN, trusted, LockedKeyStore())
    assert "the key store is locked" in str(locked.value)
    for broken in (BrokenKeyStore(short=True), BrokenKeyStore(short=False)):
        with pytest.raises(amparo.AmparoError.DeviceKey):
            amparo.Profile.open_with_device(folder, PIN, trusted, broken)
    assert amparo.unlock_status(folder).failed_attempts == 0


def test_an_existing_profile_is_bound_and_unbound_keeping_its_duress_pin(tmp_path):
    trusted = trusted_keys()
    folder = str(tmp_path / "p")
    p = amparo.Profile.create(folder, PIN, FAST, trusted)
    p.create_draft(amparo.DraftForm(text="real"))
    p.set_duress_pin("1111", False)
    assert not p.device_bound()
    before = str(tmp_path / "copy-before")
    shutil.copytree(folder, before)

    phone = HmacDeviceKey(os.urandom(32))
    with pytest.raises(amparo.AmparoError.Invalid):
        p.bind_device_key(PIN, phone, "9999")  # not the duress PIN: nothing changes
    assert not p.device_bound()
    p.bind_device_key(PIN, phone, "1111")
    assert p.device_bound()
    p.lock()
    with pytest.raises(amparo.AmparoError.DeviceKeyNeeded):
        amparo.Profile.open(folder, PIN, trusted)
    decoy = amparo.Profile.open_with_device(folder, "1111", trusted, phone)
    assert decoy.drafts() == [], "the duress PIN still opens the decoy"
    decoy.lock()
    real = amparo.Profile.open_with_device(folder, PIN, trusted, phone)
    assert [d.form.text for d in real.drafts()] == ["real"]
    # A copy taken before binding still opens with the PIN alone (binding
    # protects copies made after it).
    amparo.Profile.open(before, PIN, trusted).lock()

    real.unbind_device_key(PIN, "1111")
    assert not real.device_bound()
    real.lock()
    amparo.Profile.open(folder, PIN, trusted).lock()
    assert amparo.Profile.open(folder, "1111", trusted).drafts() == []


def test_wrong_pins_wait_longer_and_wipe_after_destroys(tmp_path):
    trusted = trusted_keys()
    folder = str(tmp_path / "p")
    amparo.Profile.create(folder, PIN, FAST, trusted).lock()
    for i in range(5):
        with pytest.raises(amparo.AmparoError.WrongPin):
            amparo.Profile.open(folder, "0000", trusted)
        assert amparo.unlock_status(folder).failed_attempts == i + 1
    status = amparo.unlock_status(folder)
    assert 0 < status.wait_seconds <= 30, status
    # The next attempt is refused without trying the PIN, even the right one.
    with pytest.raises(amparo.AmparoError.TooManyAttempts) as wait:
        amparo.Profile.open(folder, PIN, trusted)
    assert " s (" in str(wait.value) and "next PIN is taken in" in str(wait.value)
    assert amparo.unlock_status(folder).failed_attempts == 5

    # Wipe after 3 wrong PINs in a row: the third destroys the profile.
    folder = str(tmp_path / "w")
    p = amparo.Profile.create(folder, PIN, FAST, trusted)
    p.set_wipe_after(3)
    assert p.wipe_after() == 3
    p.lock()
    assert amparo.unlock_status(folder).wipe_after == 3
    for _ in range(2):
        with pytest.raises(amparo.AmparoError.WrongPin):
            amparo.Profile.open(folder, "0000", trusted)
    amparo.Profile.open(folder, PIN, trusted).lock()  # a good PIN clears the count
    assert amparo.unlock_status(folder).failed_attempts == 0
    for _ in range(3):
        with pytest.raises(amparo.AmparoError.WrongPin):
            amparo.Profile.open(folder, "0000", trusted)
    assert not amparo.profile_exists(folder)
    with pytest.raises(amparo.AmparoError.NoProfile):
        amparo.unlock_status(folder)


def test_under_a_flood_a_token_admits_her_report_and_a_phone_without_one_prepares(tmp_path):
    """A pressed relay (a small mailbox filling fast, admission on): the
    phone with no token shows "preparing to send" while it does the work;
    the one the focal point gave a token to spends it and does none."""
    coordinator = amparo.Coordinator.generate()
    relay_proc = RelayProcess(
        tmp_path / "relay",
        coordinator.public_key(),
        ["--mailbox-max-envelopes", "16", "--admission-max-effort", "16"],
    )
    try:
        trusted = amparo.TrustedKeys(
            coordinator_key=coordinator.public_key(),
            relay_receipt_keys=[relay_proc.receipt_key],
        )
        relay = amparo.Relay(amparo.RelaySettings(url=relay_proc.url, timeout_seconds=30))
        focal = amparo.Profile.create(str(tmp_path / "focal"), PIN, FAST, trusted)
        keys = focal.create_focal_identity()
        relay.publish_directory(
            coordinator.sign_directory(
                1,
                [focal_point_entry("pe-uca-defensoria", keys)],
                [],
                [amparo.RelayEntry(name="test relay", url=None, receipt_key=trusted.relay_receipt_keys[0])],
            )
        )

        # The focal point asks the relay for tokens and hands one on, as text.
        assert focal.request_tokens(relay, 2) == 2
        text = focal.export_tokens(1)
        assert text.startswith("amparo-tokens:") and focal.tokens_held() == 1
        holder = amparo.Profile.create(str(tmp_path / "holder"), PIN, FAST, trusted)
        assert holder.import_tokens(text) == 1
        worker = amparo.Profile.create(str(tmp_path / "worker"), PIN, FAST, trusted)
        for p in (holder, worker):
            assert p.refresh_directory(relay) == 1

        def report(p, text):
            form = amparo.DraftForm(
                violence=[amparo.ViolenceKind.THREATS],
                aggressors=[],
                needs=[amparo.Need.LEGAL_ADVICE],
                country="PE",
                region="PE-UCA",
                incident_date=None,
                language=amparo.Language.ES,
                text=text,
            )
            p.send_draft(p.create_draft(form), "pe-uca-defensoria", False)

        # Eight reports at once: half the mailbox, and a flood's inflow.
        for i in range(8):
            report(worker, f"Denuncia {i}: me siguieron.")
        assert worker.sync(relay, None).delivered == 8

        # Now the relay asks work: the phone without a token does it, and says so.
        report(worker, "Otra vez en la plaza.")
        progress = Progress()
        paid = worker.sync(relay, progress)
        assert (paid.delivered, paid.admission_work, paid.tokens_used, paid.waiting_for_relay) == (1, 1, 0, 0)
        assert paid.max_effort >= 1
        preparing = [s for s in progress.steps if isinstance(s, amparo.SyncProgress.PREPARING)]
        assert preparing and preparing[0].effort == paid.max_effort and preparing[0].envelopes == 1

        # The phone with a token spends it and does no work.
        report(holder, "Me quitaron el documento.")
        progress = Progress()
        spent = holder.sync(relay, progress)
        assert (spent.delivered, spent.tokens_used, spent.admission_work) == (1, 1, 0)
        assert holder.tokens_held() == 0
        assert not [s for s in progress.steps if isinstance(s, amparo.SyncProgress.PREPARING)]
    finally:
        relay_proc.stop()


def test_a_check_in_timer_is_set_checked_in_and_looks_the_same_under_duress(world):
    coordinator, relay, trusted, tmp = world
    focal = amparo.Profile.create(str(tmp / "focal"), PIN, FAST, trusted)
    relays = [amparo.RelayEntry(name="test relay", url=None, receipt_key=trusted.relay_receipt_keys[0])]
    entry = focal_point_entry("pe-uca-defensoria", focal.create_focal_identity())
    relay.publish_directory(coordinator.sign_directory(1, [entry], [], relays))

    folder = str(tmp / "p")
    survivor = amparo.Profile.create(folder, PIN, FAST, trusted)
    survivor.refresh_directory(relay)
    survivor.set_duress_pin("1111", False)
    draft = survivor.create_draft(amparo.DraftForm(text="Voy al hotel con un cliente nuevo. Placa ABC-123."))
    timer = survivor.set_timer(draft, "pe-uca-defensoria", 2, 1)
    [status] = survivor.timers()
    assert status.id == timer and status.phase == amparo.TimerPhase.ACTIVE
    assert not status.held and status.waiting_to_send
    assert survivor.next_check_in_due() == status.next_due
    [alert] = survivor.sent_reports()
    assert alert.alert, "the alert's record is marked as one"
    summary = survivor.sync(relay, None)
    assert summary.timers_held == 1
    checked = survivor.check_in(timer)
    assert checked.waiting_to_send
    assert survivor.sync(relay, None).timer_check_ins_sent == 1
    survivor.lock()

    # Under duress: the same timer, a check-in that looks the same.
    decoy = amparo.Profile.open(folder, "1111", trusted)
    [shown] = decoy.timers()
    assert shown.release_hour == checked.release_hour
    after = decoy.check_in(shown.id)
    assert after.release_hour == checked.release_hour, "the alert is not postponed"
    assert decoy.sync(relay, None).timer_check_ins_sent == 1
    decoy.lock()

    # Safe: she cancels; the alert is deleted at the relay.
    survivor = amparo.Profile.open(folder, PIN, trusted)
    survivor.cancel_timer(timer)
    assert survivor.sync(relay, None).timer_check_ins_sent == 1
    assert survivor.timers() == []
