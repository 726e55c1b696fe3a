"""Models and hardware: the GPU and its VRAM bar, RAM, and each Ollama model with its fit verdict."""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QLabel,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import formatting as fmt
from router_core.inventory.context import usable_context
from router_core.inventory.fit import VERDICT_TEXT
from router_core.inventory.hardware.info import HardwareInfo
from router_core.inventory.machine import InventorySnapshot
from router_core.settings import ContextSettings

# "Model maximum": the context the model was built for (Ollama's /api/show); "Usable here":
# what this machine gives it (inventory/context.py usable_context), the figure doctor shows
# and `hybridge setup` writes.
MODEL_COLUMNS = ("Provider", "Model", "Size", "Parameters", "Fit", "Model maximum", "Usable here", "Loaded")
VERDICT_COLORS = {
    "gpu": QColor("#2e7d32"),
    "partial": QColor("#ef6c00"),
    "cpu": QColor("#ef6c00"),
    "too_big": QColor("#c62828"),
    "cloud": QColor("#1565c0"),
}


def hardware_text(hardware: HardwareInfo, no_gpu: str = "") -> str:
    """`no_gpu`: InventorySnapshot.no_gpu_text (agrees with what Ollama reports on its GPU)."""
    cpu = hardware.cpu_name or "CPU"
    if hardware.cpu_cores:
        cpu += f", {hardware.cpu_cores} cores"
    lines = [f"{cpu} · RAM {fmt.gib(hardware.ram_available_bytes)} free of {fmt.gib(hardware.ram_total_bytes)}"]
    for gpu in hardware.gpus:
        free = fmt.gib(gpu.free_bytes) if gpu.free_bytes is not None else "?"
        extra = f" · {gpu.utilization_pct:.0f}% busy" if gpu.utilization_pct is not None else ""
        lines.append(f"GPU {gpu.index}: {gpu.name} · {free} free of {fmt.gib(gpu.total_bytes)}{extra}")
    if not hardware.gpus:
        lines.append("GPU: " + (no_gpu or f"none found ({hardware.why_no_gpu()}): local models run on the CPU"))
    return "\n".join(lines)


class MachinePanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        box = QGroupBox("This machine")
        inner = QVBoxLayout(box)
        self.hardware_label = QLabel("Reading the hardware…")
        self.hardware_label.setWordWrap(True)
        self.vram_bar = QProgressBar()
        self.vram_bar.setObjectName("vram")
        self.vram_bar.setTextVisible(True)
        self.vram_bar.setFormat("VRAM: unknown")
        self.vram_bar.setValue(0)
        inner.addWidget(self.hardware_label)
        inner.addWidget(self.vram_bar)
        layout.addWidget(box)
        models_box = QGroupBox("Models and what fits")
        models_layout = QVBoxLayout(models_box)
        self.models = QTableWidget(0, len(MODEL_COLUMNS))
        self.models.setHorizontalHeaderLabels(list(MODEL_COLUMNS))
        self.models.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.models.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.models.verticalHeader().setVisible(False)
        self.models.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.models.horizontalHeader().setStretchLastSection(True)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        models_layout.addWidget(self.models)
        models_layout.addWidget(self.note)
        layout.addWidget(models_box, 1)

    def show_snapshot(self, snapshot: InventorySnapshot, context: ContextSettings | None = None) -> None:
        """`context`: the [context] settings in force (they cap the usable context)."""
        hardware = snapshot.hardware
        self.hardware_label.setText(hardware_text(hardware, snapshot.no_gpu_text()))
        self._show_vram(hardware, snapshot.ollama_gpu_bytes)
        context = context or ContextSettings()
        rows: list[tuple[list[str], str, str]] = []  # cells, verdict key ("" unknown), fit note
        notes = []
        for provider, status in snapshot.ollama.items():
            if not status.up:
                notes.append(status.problem or f"{provider}: Ollama is down")
                continue
            for model in status.models:
                loaded = status.loaded_model(model.name)
                loaded_text = ""
                if loaded is not None:
                    loaded_text = f"yes, {fmt.gib(loaded.vram_bytes)} on GPU" if loaded.vram_bytes else "yes, in RAM"
                params = " ".join(p for p in (model.parameter_size, model.quantization) if p)
                fit = snapshot.fits.get(provider, {}).get(model.name)
                usable = usable_context(context, model.max_context, fit)
                cells = [
                    provider,
                    model.name,
                    "cloud" if model.cloud else fmt.gib(model.size_bytes),
                    params,
                    VERDICT_TEXT[fit.verdict] if fit else "unknown",
                    f"{model.max_context:,}" if model.max_context else "—",
                    f"{usable:,}" if usable else "—",
                    loaded_text,
                ]
                rows.append((cells, fit.verdict if fit else "", fit.note if fit else ""))
        self.models.setRowCount(len(rows))
        for i, (cells, verdict, note) in enumerate(rows):
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 4 and verdict:
                    item.setForeground(VERDICT_COLORS[verdict])
                    item.setToolTip(note)
                self.models.setItem(i, col, item)
        if not rows and not notes:
            notes.append("No models installed: pull one below.")
        self.note.setText("\n".join(notes))

    def _show_vram(self, hardware: HardwareInfo, ollama_gpu_bytes: int = 0) -> None:
        total = hardware.vram_total_bytes
        if not total:
            self.vram_bar.setRange(0, 1)
            self.vram_bar.setValue(0)
            # Ollama may use a GPU the probes cannot read: say so rather than "no GPU".
            self.vram_bar.setFormat(
                f"VRAM: not readable here (Ollama reports {fmt.gib(ollama_gpu_bytes)} on a GPU)"
                if ollama_gpu_bytes
                else "No GPU: VRAM none"
            )
            return
        used = max(total - hardware.vram_free_bytes, 0)
        # Progress bars hold ints: count in MiB so large cards do not overflow.
        self.vram_bar.setRange(0, total // 2**20)
        self.vram_bar.setValue(used // 2**20)
        label = "Unified memory (GPU share)" if hardware.unified_memory else "VRAM"
        self.vram_bar.setFormat(f"{label}: {fmt.gib(used)} used of {fmt.gib(total)}")
