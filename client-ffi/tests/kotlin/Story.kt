// The whole Amparo story from Kotlin, through the generated UniFFI bindings
// (the same source an Android app compiles), on the JVM with JNA, against a
// real amparo-relay process on loopback.
//
// Run by client-ffi/bindings.sh test:
//   kotlinc amparo_ffi.kt Story.kt -> story.jar; java ... StoryKt <path to amparo-relay>

import java.io.File
import java.nio.file.Files
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import uniffi.amparo_ffi.*

const val PIN = "2468"

var passed = 0
var failed = 0

fun check(ok: Boolean, what: String) {
    if (!ok) throw AssertionError(what)
}

/** An amparo-relay process on a free loopback port. */
class RelayProcess(bin: String, dataDir: File, coordinatorKey: String) {
    private val proc: Process = ProcessBuilder(
        bin, "--listen", "127.0.0.1:0", "--data-dir", dataDir.path,
        "--coordinator-key=$coordinatorKey", "--log", "info",
    ).redirectOutput(ProcessBuilder.Redirect.DISCARD).also {
        it.environment().remove("DATABASE_URL")
        it.environment().remove("AMPARO_CONFIG")
    }.start()
    val url: String
    val receiptKey: String

    init {
        val started = CompletableFuture<Pair<String, String>>()
        Thread {
            proc.errorStream.bufferedReader().forEachLine { line ->
                if (line.contains("listening on http://") && !started.isDone) {
                    val addr = line.substringAfter("listening on http://").substringBefore(",")
                    started.complete("http://$addr" to line.substringAfterLast("receipt key ").trim())
                }
            }
        }.apply { isDaemon = true }.start()
        val (u, k) = started.get(60, TimeUnit.SECONDS)
        url = u
        receiptKey = k
    }

    fun stop() {
        proc.destroyForcibly().waitFor()
    }
}

class Progress : SyncListener {
    val steps = mutableListOf<SyncProgress>()
    override fun onProgress(progress: SyncProgress) {
        steps.add(progress)
    }
}

fun entry(id: String, keys: FocalKeys) = FocalPoint(
    id = id,
    name = LocalizedText(es = "Defensoría de Ucayali", pt = "Defensoria de Ucayali", en = "Ucayali Ombudsman"),
    organization = "Defensoría del Pueblo",
    regions = listOf("PE-UCA"),
    categories = listOf(Need.LEGAL_ADVICE, Need.PROTECTION_SHELTER),
    languages = listOf(Language.ES),
    keys = keys,
    validFrom = 0uL,
    validUntil = 1uL shl 62,
    reads = listOf("deflate_d1"),
)

class World(relayBin: String) {
    val tmp: File = Files.createTempDirectory("amparo-kotlin").toFile()
    val coordinator = Coordinator.generate()
    val relayProcess = RelayProcess(relayBin, File(tmp, "relay"), coordinator.publicKey())
    val trusted = TrustedKeys(coordinator.publicKey(), listOf(relayProcess.receiptKey))
    val relay = Relay(RelaySettings(url = relayProcess.url, timeoutSeconds = 30u))

    fun profile(name: String) =
        Profile.create(File(tmp, name).path, PIN, KdfStrength.DANGEROUSLY_FAST_FOR_TESTS, trusted)

    fun close() {
        relayProcess.stop()
        tmp.deleteRecursively()
    }
}

fun reportIsSentAnsweredAndReadThenWiped(w: World) {
    val focal = w.profile("focal")
    val keys = focal.createFocalIdentity()
    val signed = w.coordinator.signDirectory(
        1uL, listOf(entry("pe-uca-defensoria", keys)), emptyList(),
        listOf(RelayEntry(name = "test relay", url = null, receiptKey = w.relayProcess.receiptKey)),
    )
    w.relay.publishDirectory(signed)

    val survivor = w.profile("survivor")
    check(survivor.refreshDirectory(w.relay) == 1uL, "directory version 1")
    val found = survivor.focalPoints(FocalPointQuery(region = "PE-UCA", need = Need.LEGAL_ADVICE))
    check(found.map { it.id } == listOf("pe-uca-defensoria"), "focal point found: $found")

    val form = DraftForm(
        violence = listOf(ViolenceKind.EXTORTION),
        aggressors = listOf(AggressorKind.POLICE_OR_SECURITY),
        needs = listOf(Need.LEGAL_ADVICE),
        region = "PE-UCA",
        language = Language.ES,
        text = "Dos agentes me pidieron dinero para no llevarme detenida.",
    )
    val draftId = survivor.createDraft(form)
    val audio = ByteArray(150_000) { (it % 251).toByte() }
    survivor.addAttachment(draftId, AttachmentKind.AUDIO, "audio/ogg", audio)
    val reportId = survivor.sendDraft(draftId, "pe-uca-defensoria", false)
    val queued = survivor.outboxLen()
    check(queued >= 4uL, "report and three pieces of audio queued: $queued")

    val progress = Progress()
    val summary = survivor.sync(w.relay, progress)
    check(summary.delivered == queued && summary.refused == 0uL, "delivered: $summary")
    check(survivor.outboxLen() == 0uL, "outbox empty")
    val last = progress.steps.filterIsInstance<SyncProgress.Upload>().last()
    check(last.done == queued && last.total == queued, "upload progress reached the end: ${progress.steps}")

    val fetched = focal.focalSync(w.relay, null).fetched
    check(fetched.newCases == 1uL && fetched.rejected == 0uL, "one case: $fetched")
    val case = focal.getCase(reportId)
    check(case.form.text == form.text, "the report reads as written")
    check(case.attachments.single().data!!.contentEquals(audio), "the audio arrives whole")

    focal.replyToCase(reportId, "Recibimos su reporte.")
    focal.setCaseStatus(reportId, CaseStatus.IN_PROGRESS, "Una defensora la acompaña.")
    check(focal.focalSync(w.relay, null).sent.delivered == 2uL, "reply and status sent")

    // On a metered link the app gives a smaller budget for answers.
    val answered = survivor.syncWithin(w.relay, 256uL * 1024uL, null)
    check(answered.newMessages == 2uL && !answered.repliesLeft && answered.discarded == 0uL, "two messages: $answered")
    check(answered.replyBytes <= 256uL * 1024uL && answered.retryAfterSecs == null, "within the budget: $answered")
    check(survivor.messages().any { it.text == "Recibimos su reporte." }, "the reply is read")
    check(survivor.sentReports().single().status == CaseStatus.IN_PROGRESS, "status in progress")

    val folder = File(w.tmp, "survivor").path
    survivor.wipe()
    check(!profileExists(folder), "wiped from disk")
    try {
        survivor.drafts()
        check(false, "a wiped profile still answered")
    } catch (e: AmparoException.ProfileClosed) {
        // expected
    }
}

fun wrongPinGivesTheFlatError(w: World) {
    val folder = File(w.tmp, "pin").path
    w.profile("pin").lock()
    try {
        Profile.open(folder, "1357", w.trusted)
        check(false, "a wrong PIN opened the profile")
    } catch (e: AmparoException.WrongPin) {
        check(e.message == "the PIN is not correct", "message: ${e.message}")
    }
    val p = Profile.open(folder, PIN, w.trusted)
    try {
        p.draft("not an id")
        check(false, "a bad id was accepted")
    } catch (e: AmparoException) {
        check(e is AmparoException.Invalid, "bad id is Invalid: $e")
    }
}

/** What an app's Android Keystore key does: HMAC-SHA256 under a key that
 *  stays put (here in memory; on a phone in the Keystore, see README). */
class HmacDeviceKey(private val key: ByteArray) : DeviceKey {
    var asked = 0
    override fun respond(challenge: ByteArray): ByteArray {
        asked++
        val mac = javax.crypto.Mac.getInstance("HmacSHA256")
        mac.init(javax.crypto.spec.SecretKeySpec(key, "HmacSHA256"))
        return mac.doFinal(challenge)
    }
}

fun aCopiedProfileOpensOnlyOnItsOwnDevice(w: World) {
    val random = java.security.SecureRandom()
    val phone = HmacDeviceKey(ByteArray(32).also { random.nextBytes(it) })
    val folder = File(w.tmp, "phone")
    val p = Profile.createWithDevice(folder.path, PIN, KdfStrength.DANGEROUSLY_FAST_FOR_TESTS, w.trusted, phone)
    check(p.deviceBound(), "bound at creation")
    p.createDraft(DraftForm(text = "lo que pasó"))
    p.setWipeAfter(10u)
    p.lock()
    val copy = File(w.tmp, "seized")
    folder.copyRecursively(copy)
    val other = HmacDeviceKey(ByteArray(32).also { random.nextBytes(it) })
    try {
        Profile.openWithDevice(copy.path, PIN, w.trusted, other)
        check(false, "the copy opened with another phone's key")
    } catch (e: AmparoException.WrongPin) {
        // expected: the right PIN, the wrong device
    }
    val status = unlockStatus(copy.path)
    check(status.failedAttempts == 1u && status.deviceBound && status.wipeAfter == 10u, "status: $status")
    try {
        Profile.open(copy.path, PIN, w.trusted)
        check(false, "a bound profile opened without its key")
    } catch (e: AmparoException.DeviceKeyNeeded) {
        // expected
    }
    try {
        Profile.openWithDevice(folder.path, PIN, w.trusted, object : DeviceKey {
            override fun respond(challenge: ByteArray): ByteArray =
                throw DeviceKeyException.Failed("the key store is locked")
        })
        check(false, "a failing key store opened the profile")
    } catch (e: AmparoException.DeviceKey) {
        check(e.message?.contains("the key store is locked") == true, "message: ${e.message}")
    }
    val mine = Profile.openWithDevice(copy.path, PIN, w.trusted, phone)
    check(mine.drafts().single().form.text == "lo que pasó", "the copy opens on its own phone")
    mine.unbindDeviceKey(PIN, null)
    check(!mine.deviceBound(), "unbound")
}

fun aCheckInTimerLooksTheSameUnderDuress(w: World) {
    val focal = w.profile("focal")
    val keys = focal.createFocalIdentity()
    w.relay.publishDirectory(
        w.coordinator.signDirectory(
            1uL, listOf(entry("pe-uca-defensoria", keys)), emptyList(),
            listOf(RelayEntry(name = "test relay", url = null, receiptKey = w.relayProcess.receiptKey)),
        ),
    )
    val survivor = w.profile("survivor")
    survivor.refreshDirectory(w.relay)
    survivor.setDuressPin("1111", false)
    val draft = survivor.createDraft(DraftForm(text = "Voy al hotel con un cliente nuevo. Placa ABC-123."))
    val timer = survivor.setTimer(draft, "pe-uca-defensoria", 2u, 1u)
    val status = survivor.timers().single()
    check(status.id == timer && status.phase == TimerPhase.ACTIVE && !status.held, "timer set: $status")
    check(survivor.nextCheckInDue() == status.nextDue, "the next check-in is due")
    check(survivor.sync(w.relay, null).timersHeld == 1uL, "the relay holds the alert")
    val checked = survivor.checkIn(timer)
    check(survivor.sync(w.relay, null).timerCheckInsSent == 1uL, "the check-in went")
    survivor.lock()

    val decoy = Profile.open(File(w.tmp, "survivor").path, "1111", w.trusted)
    val shown = decoy.timers().single()
    val after = decoy.checkIn(shown.id)
    check(after.releaseHour == checked.releaseHour, "a duress check-in does not postpone: $after")
    check(decoy.sync(w.relay, null).timerCheckInsSent == 1uL, "it goes like a check-in")
}

fun main(args: Array<String>) {
    val relayBin = args.getOrNull(0) ?: System.getenv("AMPARO_RELAY_BIN") ?: "target/debug/amparo-relay"
    val tests = listOf(
        "report is sent, answered and read, then wiped" to ::reportIsSentAnsweredAndReadThenWiped,
        "wrong PIN gives the flat error" to ::wrongPinGivesTheFlatError,
        "a copied profile opens only on its own device" to ::aCopiedProfileOpensOnlyOnItsOwnDevice,
        "a check-in timer looks the same under duress" to ::aCheckInTimerLooksTheSameUnderDuress,
    )
    for ((name, test) in tests) {
        val w = World(relayBin)
        val start = System.nanoTime()
        try {
            test(w)
            passed++
            println("PASS $name (${(System.nanoTime() - start) / 1_000_000} ms)")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
            e.printStackTrace()
        } finally {
            w.close()
        }
    }
    println("kotlin: $passed passed, $failed failed")
    if (failed > 0) System.exit(1)
}
