/* Compile check: the implementation after stb_image and stb_image_resize (the dataset code
   that uses them), as C99 and C++17 with -Werror. Only stb's declarations are needed. */
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#define GANTL_IMPLEMENTATION
#include "../gantl.h"
