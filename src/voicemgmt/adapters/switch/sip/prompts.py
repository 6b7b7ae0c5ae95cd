"""IVR prompts and music as 8 kHz audio: WAV files, or text spoken by espeak-ng; cached.

``{"audio": "welcome.wav"}`` is read from the prompts folder (any WAV: 8/16-bit, mono or
stereo, any rate; resampled here); ``{"text": "..."}`` is rendered once with ``espeak-ng``
into the cache folder, named by a hash of the voice and the text, and read from there next
time. Music on hold is a WAV file if configured, else a soft synthesised chime.
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import io
import logging
import math
import shutil
import sys
import wave
from pathlib import Path

from voicemgmt.adapters.switch.sip.media.base import SAMPLE_RATE, Audio

log = logging.getLogger(__name__)
MAX_PROMPT_SECONDS = 600
RENDER_TIMEOUT = 30.0


class PromptUnavailable(Exception):
    """The prompt's file is missing or unreadable, or text could not be rendered."""


def read_wav(data: bytes, name: str = "") -> Audio:
    """Any PCM WAV as 8 kHz mono 16-bit audio."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            if wav.getnframes() > rate * MAX_PROMPT_SECONDS:
                raise PromptUnavailable(f"{name} is longer than {MAX_PROMPT_SECONDS} s")
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise PromptUnavailable(f"{name} is not a PCM WAV file: {exc}") from exc
    if width == 1:
        samples = array.array("h", ((b - 128) << 8 for b in frames))
    elif width == 2:
        samples = array.array("h")
        samples.frombytes(frames[: len(frames) - len(frames) % 2])
        if sys.byteorder == "big":
            samples.byteswap()
    else:
        raise PromptUnavailable(f"{name}: only 8- and 16-bit WAV files are supported")
    if channels > 1:
        samples = array.array("h", samples[::channels])
    if rate != SAMPLE_RATE:
        samples = resample(samples, rate, SAMPLE_RATE)
    out = samples
    if sys.byteorder == "big":
        out = array.array("h", samples)
        out.byteswap()
    return Audio(out.tobytes(), name)


def resample(samples: array.array[int], source: int, target: int) -> array.array[int]:
    """Linear interpolation after a moving-average low-pass when going down."""
    if source <= 0 or not samples:
        return array.array("h")
    if source > target:
        width = max(1, round(source / target))
        if width > 1:
            window = sum(samples[:width])
            smoothed = []
            for index in range(len(samples)):
                smoothed.append(window // width)
                window += samples[min(index + width, len(samples) - 1)] - samples[index]
            samples = array.array("h", smoothed)
    step = source / target
    count = int(len(samples) / step)
    out = array.array("h", bytes(2 * count))
    last = len(samples) - 1
    for index in range(count):
        position = index * step
        base = int(position)
        frac = position - base
        after = samples[min(base + 1, last)]
        out[index] = int(samples[base] * (1 - frac) + after * frac)
    return out


def chime(seconds: float = 8.0) -> Audio:
    """Soft repeating notes, for music on hold when no file is configured."""
    notes = (523.25, 659.25, 783.99, 659.25)
    note_samples = int(SAMPLE_RATE * seconds / len(notes))
    out = array.array("h")
    for frequency in notes:
        for index in range(note_samples):
            envelope = math.sin(math.pi * index / note_samples)
            value = 5000 * envelope * math.sin(2 * math.pi * frequency * index / SAMPLE_RATE)
            out.append(int(value))
    if sys.byteorder == "big":
        out.byteswap()
    return Audio(out.tobytes(), "chime")


class PromptLibrary:
    def __init__(
        self,
        prompts_dir: Path,
        cache_dir: Path,
        *,
        voice: str = "en",
        music_file: Path | None = None,
        espeak: str = "espeak-ng",
    ) -> None:
        self.prompts_dir = prompts_dir
        self.cache_dir = cache_dir
        self.voice = voice
        self.music_file = music_file
        self.espeak = espeak
        self._memory: dict[str, Audio] = {}
        self._rendering: dict[str, asyncio.Future[Audio]] = {}

    async def load(self, prompt: dict[str, str]) -> Audio:
        """The audio of an IVR prompt (``{"audio": file}`` or ``{"text": words}``)."""
        if "audio" in prompt:
            name = prompt["audio"]
            if "/" in name or name.startswith("."):
                raise PromptUnavailable(f"bad prompt file name {name!r}")
            return await self._cached(f"file:{name}", lambda: self._read(self.prompts_dir / name))
        text = prompt.get("text", "")
        key = hashlib.sha256(f"{self.voice}\0{text}".encode()).hexdigest()[:32]
        return await self._cached(f"text:{key}", lambda: self._render(text, key))

    async def music(self) -> Audio:
        if self.music_file is None:
            return await self._cached("music:chime", self._chime)
        music_file = self.music_file
        return await self._cached("music:file", lambda: self._read(music_file))

    async def _chime(self) -> Audio:
        return chime()

    async def _cached(self, key: str, make: object) -> Audio:
        found = self._memory.get(key)
        if found is not None:
            return found
        pending = self._rendering.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Audio] = asyncio.get_running_loop().create_future()
        self._rendering[key] = future
        try:
            assert callable(make)
            audio: Audio = await make()
            if len(self._memory) > 500:
                self._memory.pop(next(iter(self._memory)))
            self._memory[key] = audio
            future.set_result(audio)
            return audio
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            del self._rendering[key]

    async def _read(self, path: Path) -> Audio:
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise PromptUnavailable(f"cannot read {path.name}: {exc.strerror}") from exc
        return await asyncio.to_thread(read_wav, data, path.name)

    async def _render(self, text: str, key: str) -> Audio:
        target = self.cache_dir / f"{key}.wav"
        if not target.exists():
            if shutil.which(self.espeak) is None:
                raise PromptUnavailable(f"{self.espeak} is not installed: text prompts need it")
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".part")
            process = await asyncio.create_subprocess_exec(
                self.espeak,
                "-v",
                self.voice,
                "-w",
                str(partial),
                "--",
                text,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                _, err = await asyncio.wait_for(process.communicate(), RENDER_TIMEOUT)
            except TimeoutError as exc:
                process.kill()
                await process.wait()
                raise PromptUnavailable("espeak-ng took too long") from exc
            if process.returncode != 0:
                raise PromptUnavailable(f"espeak-ng failed: {err.decode(errors='replace')[:200]}")
            partial.replace(target)
        return await self._read(target)
