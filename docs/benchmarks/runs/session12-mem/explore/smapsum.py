import sys,re
def load(f):
    d={};cur=None
    for l in open(f):
        if re.match(r'^[0-9a-f]+-[0-9a-f]+ ',l):
            parts=l.split()
            name=parts[5] if len(parts)>5 else '[anon]'
            cur=(name,parts[1]);d.setdefault(cur,{'Rss':0,'Anonymous':0,'Private_Dirty':0})
        else:
            k=l.split(':')[0]
            if cur and k in ('Rss','Anonymous','Private_Dirty'):
                d[cur][k]+=int(l.split()[1])
    return d
a=load(sys.argv[1]);b=load(sys.argv[2])
for k in sorted(set(a)|set(b), key=lambda k: -(b.get(k,{}).get('Rss',0)-a.get(k,{}).get('Rss',0))):
    x=a.get(k,{'Rss':0,'Anonymous':0,'Private_Dirty':0});y=b.get(k,{'Rss':0,'Anonymous':0,'Private_Dirty':0})
    dr=y['Rss']-x['Rss']
    if dr!=0 or y['Rss']>500: print(f"{k[0][-40:]:40} {k[1]} rss {x['Rss']}->{y['Rss']} ({dr:+}) anon {x['Anonymous']}->{y['Anonymous']} pdirty {x['Private_Dirty']}->{y['Private_Dirty']}")
