/*
 * merge.c: k-way merge of per-shard top-k lists (see merge.h).
 */
#include "merge.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

int
merge_cmp(const MergeItem *a, const MergeItem *b)
{
	if (a->dist < b->dist)
		return -1;
	if (a->dist > b->dist)
		return 1;
	return strcmp(a->id, b->id);
}

static int
merge_qsort_cmp(const void *a, const void *b)
{
	return merge_cmp(a, b);
}

void
merge_sort(MergeItem *items, int n)
{
	qsort(items, n, sizeof(MergeItem), merge_qsort_cmp);
}

typedef struct HeapEnt {
	const MergeItem *item;
	int list;
	int pos;
} HeapEnt;

static void
heap_down(HeapEnt *h, int n, int i)
{
	while (1) {
		int l = 2 * i + 1, r = l + 1, m = i;
		HeapEnt t;

		if (l < n && merge_cmp(h[l].item, h[m].item) < 0)
			m = l;
		if (r < n && merge_cmp(h[r].item, h[m].item) < 0)
			m = r;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

int
merge_topk(MergeItem *const *lists, const int *lens, int nlists, int k, MergeItem *out)
{
	HeapEnt *h = xmalloc(sizeof(HeapEnt) * (nlists ? nlists : 1));
	int n = 0, nout = 0;

	for (int i = 0; i < nlists; i++)
		if (lens[i] > 0)
			h[n++] = (HeapEnt){&lists[i][0], i, 0};
	for (int i = n / 2 - 1; i >= 0; i--)
		heap_down(h, n, i);
	while (n > 0 && nout < k) {
		HeapEnt *top = &h[0];

		if (nout == 0 || strcmp(out[nout - 1].id, top->item->id) != 0)
			out[nout++] = *top->item;
		if (++top->pos < lens[top->list])
			top->item = &lists[top->list][top->pos];
		else
			h[0] = h[--n];
		heap_down(h, n, 0);
	}
	free(h);
	return nout;
}
