/* The gantl command line. Each command is a function below; `gantl help` lists them and
   `gantl COMMAND --help` describes one.

   build: make   (or: cc -O2 -fopenmp examples/gantl.c -o gantl -lm) */
#define GANTL_IMPLEMENTATION
#include "../gantl.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage;
} command;

static int wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

static int cmd_info(int argc, char **argv) {
    int list_ops = argc > 1 && !strcmp(argv[1], "--ops");
    if (argc > 1 && !list_ops) {
        fprintf(stderr, "gantl info: unknown option '%s' (see gantl info --help)\n", argv[1]);
        return 2;
    }
    printf("gantl %s\n", GANTL_VERSION);
#if defined(_OPENMP) && !defined(GANTL_NO_OPENMP)
    printf("cpu threads: %d (OpenMP)\n", gantl_num_threads());
#else
    printf("cpu threads: 1 (built without OpenMP)\n");
#endif
    printf("backends:");
    for (int d = 0; d < GANTL_DEVICE_COUNT; d++) {
        const gantl_backend *b = gantl_get_backend((gantl_device)d);
        if (b) printf(" %s", b->name);
    }
    printf("\nops: %d\n", GANTL_OP_COUNT);
    if (list_ops)
        for (int op = 0; op < GANTL_OP_COUNT; op++)
            printf("  %-18s %d input%s\n", gantl_op_name(op), gantl_op_num_inputs(op), gantl_op_num_inputs(op) == 1 ? "" : "s");
    return 0;
}

static const command commands[] = {
    {"info", cmd_info, "version, threads, backends and ops of this build",
     "usage: gantl info [--ops]\n  --ops   list every op of the op table with its number of inputs\n"},
};
static const int command_count = (int)(sizeof commands / sizeof commands[0]);

static void print_help(FILE *out) {
    fprintf(out, "gantl %s: GAN transfer learning in one C header\n\nusage: gantl COMMAND [OPTIONS]\n\ncommands:\n",
            GANTL_VERSION);
    for (int i = 0; i < command_count; i++) fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'gantl COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_help(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("gantl %s\n", GANTL_VERSION);
        return 0;
    }
    for (int i = 0; i < command_count; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        if (wants_help(argc - 1, argv + 1)) {
            printf("%s", commands[i].usage);
            return 0;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "gantl: unknown command '%s'\n\n", argv[1]);
    print_help(stderr);
    return 2;
}
