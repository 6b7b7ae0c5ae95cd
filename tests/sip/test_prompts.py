"""Prompts: WAV files of any common shape, text spoken by espeak-ng (cached), music."""

from __future__ import annotations

import array
import asyncio
import math
import wave
from pathlib import Path

import pytest

from tests.sip.peers import need
from voicemgmt.adapters.switch.sip.prompts import PromptLibrary, PromptUnavailable, read_wav


def write(path: Path, rate: int, channels: int, width: int, seconds: float) -> None:
    frames = int(rate * seconds)
    with wave.open(str(path), "wb") as file:
        file.setnchannels(channels)
        file.setsampwidth(width)
        file.setframerate(rate)
        if width == 2:
            samples = array.array(
                "h",
                (
                    int(8000 * math.sin(2 * math.pi * 440 * (i // channels) / rate))
                    for i in range(frames * channels)
                ),
            )
            file.writeframes(samples.tobytes())
        else:
            file.writeframes(bytes(128 for _ in range(frames * channels)))


@pytest.mark.parametrize(
    ("rate", "channels", "width"), [(8000, 1, 2), (16000, 1, 2), (44100, 2, 2), (22050, 1, 1)]
)
def test_a_wav_becomes_8_khz_mono_of_the_same_length(
    tmp_path: Path, rate: int, channels: int, width: int
) -> None:
    write(tmp_path / "p.wav", rate, channels, width, 1.5)
    audio = read_wav((tmp_path / "p.wav").read_bytes(), "p.wav")
    assert audio.seconds == pytest.approx(1.5, abs=0.01)
    assert len(audio.encoded(0)) == int(audio.seconds * 8000)


def test_text_is_spoken_once_then_read_from_the_cache(tmp_path: Path) -> None:
    need("espeak-ng")
    library = PromptLibrary(tmp_path / "prompts", tmp_path / "cache")

    async def load_twice() -> tuple[float, float]:
        first = await library.load({"text": "Welcome to Acme. Please key your order number."})
        again = await PromptLibrary(tmp_path / "prompts", tmp_path / "cache").load(
            {"text": "Welcome to Acme. Please key your order number."}
        )
        return first.seconds, again.seconds

    first, again = asyncio.run(load_twice())
    assert first > 1.5
    assert again == first
    assert len(list((tmp_path / "cache").glob("*.wav"))) == 1


@pytest.mark.parametrize("name", ["missing.wav", "../secret.wav", "not-a-wav.wav"])
def test_an_unusable_prompt_file_is_reported_not_raised_through(tmp_path: Path, name: str) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "not-a-wav.wav").write_bytes(b"RIFF....garbage")
    library = PromptLibrary(tmp_path / "prompts", tmp_path / "cache")
    with pytest.raises(PromptUnavailable):
        asyncio.run(library.load({"audio": name}))
