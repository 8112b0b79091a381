// A minimal TensorFlow Lite Micro application for a model written by `attendnext micro --name attendnext_model`.
// Build it with TFLM's sources (tensorflow/lite/micro) and the three generated files; see ../README.md.

#include <cmath>
#include <cstdint>
#include <cstdio>

#include "attendnext_model.h"
#include "attendnext_model_op_resolver.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {
alignas(16) uint8_t tensor_arena[attendnext_model::kTensorArenaSize];

// Fills the int8 input from RGB pixels (0-255), already resized and center-cropped to the model's input size.
void QuantizeImage(const uint8_t* rgb, int8_t* input) {
  const int count = attendnext_model::kInputHeight * attendnext_model::kInputWidth * attendnext_model::kInputChannels;
  for (int i = 0; i < count; ++i) {
    int value = static_cast<int>(std::lround(rgb[i] / attendnext_model::kInputScale)) +
                attendnext_model::kInputZeroPoint;
    input[i] = static_cast<int8_t>(value < -128 ? -128 : (value > 127 ? 127 : value));
  }
}
}  // namespace

// Returns the class index of `rgb`, or -1 on error.
int Classify(const uint8_t* rgb) {
  const tflite::Model* model = tflite::GetModel(g_attendnext_model);
  static attendnext_model::OpResolver resolver;
  static bool registered = attendnext_model::RegisterOps(resolver) == kTfLiteOk;
  if (!registered) return -1;
  tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, sizeof(tensor_arena));
  if (interpreter.AllocateTensors() != kTfLiteOk) return -1;  // arena too small: raise kTensorArenaSize
  QuantizeImage(rgb, interpreter.input(0)->data.int8);
  if (interpreter.Invoke() != kTfLiteOk) return -1;
  const int8_t* logits = interpreter.output(0)->data.int8;
  int best = 0;
  for (int i = 1; i < attendnext_model::kNumClasses; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  printf("%s (arena used: %u bytes)\n", attendnext_model::kClassNames[best],
         static_cast<unsigned>(interpreter.arena_used_bytes()));
  return best;
}
