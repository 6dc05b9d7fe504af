let mut sum = 0;
for x in &xs {
    sum += x;
}
sum
