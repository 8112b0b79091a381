/* QEMU TCG plugin: guest instructions executed, read at marks the guest program sets.
 *
 * Every translation block adds its instruction count to one counter when it runs (inline, as QEMU's bb plugin
 * does). A guest marks a point by calling lseek(-1, MARK_BASE + label, SEEK_SET): it fails with EBADF and changes
 * nothing, and the plugin logs "mark <label> <instructions so far>". Differences between marks count the work in
 * between, without the interpreter's start-up. One counter for every vCPU, unlocked: the guest must do its counted
 * work in one thread (LiteRT with num_threads=1; deploy/arm_cpu.py keeps OpenBLAS from starting worker threads).
 * Built by tools/setup_arm_cpu.sh against the qemu-plugin.h of the installed QEMU's source.
 */
#include <inttypes.h>
#include <stdio.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define LSEEK_AARCH64 62
#define MARK_BASE 0x4137320000ULL /* a marker above a 16-bit label */

static uint64_t executed;

static void tb_translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed,
                                             qemu_plugin_tb_n_insns(tb));
}

static void syscall_entered(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                            uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    char line[80];

    if (num != LSEEK_AARCH64 || (int32_t)a1 != -1 || (a2 & ~0xffffULL) != MARK_BASE) {
        return;
    }
    snprintf(line, sizeof line, "mark %" PRIu64 " %" PRIu64 "\n", a2 & 0xffff, executed);
    qemu_plugin_outs(line);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_translated);
    qemu_plugin_register_vcpu_syscall_cb(id, syscall_entered);
    return 0;
}
