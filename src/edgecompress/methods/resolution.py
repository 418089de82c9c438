"""Input resolution reduction: the model sees its images at a smaller square, then is distilled from its teacher.

A convolutional network that pools globally before its classifier runs at any input size with the same weights,
and each layer's multiply-accumulates fall with the pixels it sees (a quarter at half the side): resolution is one
of the three dimensions EfficientNet scales and MCUNet searches for microcontrollers. A bilinear Resizing layer
between the image and the layers that read it does the downscaling, so the model still takes the images every stage
feeds it; the weights, trained at the full size, are then fine-tuned by distillation, as block and filter pruning
are.
"""
from edgecompress.core.errors import UserError
from edgecompress.core.params import fine_tuning, integer
from edgecompress.methods.knowledge_distillation import DISTILLATION, DistillFineTune, distillation_text


class Downscale(DistillFineTune):
    """Resize the model's input to downscale.input_size, then fine-tune by distillation."""

    rules = fine_tuning(**DISTILLATION, input_size=integer(1))

    def calibrate(self, model, trial):
        from edgecompress.methods._input_resizing import resized, seen_size

        before, after = seen_size(model), self.settings["input_size"]
        if after > before:
            raise UserError(f"params: {self.written('input_size')} = {after} is not allowed; the upstream model sees "
                            f"{before}x{before} images; expected at most {before}")
        self.sizes, self.smaller = {"before": before, "after": after}, resized(model, after, self.written("input_size"))
        super().calibrate(self.smaller, trial)

    def apply(self, model, upstream, steps):
        return super().apply(self.smaller, upstream, steps)

    def facts(self):
        return {**super().facts(), "input_size": self.sizes}

    @staticmethod
    def describe(model: str, record: dict) -> str:
        sizes = record["facts"]["input_size"]
        return (f"`{model}`: sees its images downscaled from {sizes['before']}x{sizes['before']} to "
                f"{sizes['after']}x{sizes['after']} by a Resizing layer in front of the layers that read them; then "
                f"{distillation_text(record)}")


METHODS = {"downscale": Downscale}
